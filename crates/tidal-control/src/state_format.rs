//! How the control plane's state and log entries are written, and how
//! those written before they carried a format version are read.
//!
//! Version 0 is the layout from before moves existed: placements without
//! their genesis slots, no move records. Such a state is read into the
//! current one with every PRG owning the slots its tenant gave it at
//! creation (nothing could move then, so that is still true).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use tidal_core::cluster::DrainRecord;
use tidal_core::operation::{OpId, Operation};
use tidal_core::ownership::MoveId;
use tidal_core::replica_move::{ReplicaMove, ReplicaPhase};
use tidal_core::shrink::ShrinkPlan;
use tidal_core::slot_move::SlotMove;
use tidal_core::{ClusterState, NodeId, NodeInfo, Placement, PrgId, Tenant};
use tidal_raft::types::{decode, encode_versioned, split_version};

use crate::command::CpCommand;

/// The format version of persisted states and of new log entries: 8 since
/// the state holds the autoscale policy and its decisions (7: the control
/// plane's learners; 6: drains and removed
/// nodes; 5: shrink plans; 4: scaling operations and retired PRGs;
/// 3: a replica move records the bytes its learner has taken; 2: each
/// node's data-directory instance).
pub const CP_FORMAT: u8 = 8;

pub fn encode_state(s: &ClusterState) -> Vec<u8> {
    encode_versioned(CP_FORMAT, s)
}

pub fn decode_state(b: &[u8]) -> Result<ClusterState, String> {
    match split_version(b) {
        (0, body) => decode::<StateV0>(body).map(ClusterState::from).map_err(|e| format!("state of version 0: {e}")),
        (1, body) => decode::<StateV1>(body).map(ClusterState::from).map_err(|e| format!("state of version 1: {e}")),
        (2, body) => decode::<StateV2>(body).map(ClusterState::from).map_err(|e| format!("state of version 2: {e}")),
        (3, body) => decode::<StateV3>(body).map(ClusterState::from).map_err(|e| format!("state of version 3: {e}")),
        (4, body) => decode::<StateV4>(body).map(ClusterState::from).map_err(|e| format!("state of version 4: {e}")),
        (5, body) => decode::<StateV5>(body).map(ClusterState::from).map_err(|e| format!("state of version 5: {e}")),
        (6, body) => decode::<StateV6>(body).map(ClusterState::from).map_err(|e| format!("state of version 6: {e}")),
        (7, body) => decode::<StateV7>(body).map(ClusterState::from).map_err(|e| format!("state of version 7: {e}")),
        (CP_FORMAT, body) => decode(body).map_err(|e| format!("state of version {CP_FORMAT}: {e}")),
        (v, _) => Err(format!("state of version {v}, newer than this node understands ({CP_FORMAT})")),
    }
}

pub fn encode_command(c: &CpCommand) -> Vec<u8> {
    encode_versioned(CP_FORMAT, c)
}

/// Entries of every version hold the same enum: new variants only ever
/// go after the old ones, which are unchanged.
pub fn decode_command(b: &[u8]) -> Result<CpCommand, String> {
    match split_version(b) {
        (0..=CP_FORMAT, body) => decode(body).map_err(|e| e.to_string()),
        (v, _) => Err(format!("command of version {v}, newer than this node understands ({CP_FORMAT})")),
    }
}

/// A placement as version 0 wrote it.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PlacementV0 {
    pub prg: PrgId,
    pub members: Vec<NodeId>,
    pub epoch: u64,
    pub leader_hint: Option<NodeId>,
}

/// The cluster state as version 0 wrote it.
#[derive(Serialize, Deserialize, Default)]
pub(crate) struct StateV0 {
    pub version: u64,
    pub routing_epoch: u64,
    pub cp_members: Vec<NodeId>,
    pub nodes: BTreeMap<NodeId, NodeInfo>,
    pub tenants: BTreeMap<String, Tenant>,
    pub placements: BTreeMap<PrgId, PlacementV0>,
}

impl From<StateV0> for ClusterState {
    fn from(old: StateV0) -> Self {
        let prgs = |tenant: &str| old.placements.keys().filter(|p| p.tenant == tenant).count() as u32;
        let placements = old
            .placements
            .iter()
            .map(|(id, p)| {
                let genesis = old
                    .tenants
                    .get(&id.tenant)
                    .map(|t| vec![Tenant::initial_range(t.slots, prgs(&id.tenant), id.index)])
                    .unwrap_or_default();
                let mut np = Placement::new(id.clone(), p.members.clone(), p.epoch, genesis);
                np.leader_hint = p.leader_hint;
                // Every group of a running cluster of that version was bootstrapped.
                np.bootstrapped = true;
                (id.clone(), np)
            })
            .collect();
        ClusterState {
            version: old.version,
            routing_epoch: old.routing_epoch,
            cp_members: old.cp_members,
            nodes: old.nodes,
            tenants: old.tenants,
            placements,
            moves: BTreeMap::new(),
            replica_moves: BTreeMap::new(),
            next_move_id: 1,
            instances: BTreeMap::new(),
            ..ClusterState::default()
        }
    }
}

/// The cluster state as version 1 wrote it: no data-directory instances.
#[derive(Serialize, Deserialize)]
pub(crate) struct StateV1 {
    pub version: u64,
    pub routing_epoch: u64,
    pub cp_members: Vec<NodeId>,
    pub nodes: BTreeMap<NodeId, NodeInfo>,
    pub tenants: BTreeMap<String, Tenant>,
    pub placements: BTreeMap<PrgId, Placement>,
    pub moves: BTreeMap<MoveId, SlotMove>,
    pub replica_moves: BTreeMap<MoveId, ReplicaMoveV2>,
    pub next_move_id: MoveId,
}

impl From<StateV1> for ClusterState {
    /// Each node's instance is recorded by its next registration.
    fn from(old: StateV1) -> Self {
        ClusterState::from(StateV2 {
            version: old.version,
            routing_epoch: old.routing_epoch,
            cp_members: old.cp_members,
            nodes: old.nodes,
            tenants: old.tenants,
            placements: old.placements,
            moves: old.moves,
            replica_moves: old.replica_moves,
            next_move_id: old.next_move_id,
            instances: BTreeMap::new(),
        })
    }
}

/// A replica move as versions 1 and 2 wrote it: no bytes.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct ReplicaMoveV2 {
    pub id: MoveId,
    pub prg: PrgId,
    pub from: NodeId,
    pub to: NodeId,
    pub phase: ReplicaPhase,
    pub lag: Option<u64>,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub finished_ms: Option<u64>,
    pub cancel_requested: bool,
    pub error: Option<String>,
}

impl From<ReplicaMoveV2> for ReplicaMove {
    fn from(o: ReplicaMoveV2) -> Self {
        ReplicaMove {
            id: o.id,
            prg: o.prg,
            from: o.from,
            to: o.to,
            phase: o.phase,
            lag: o.lag,
            bytes: 0,
            created_ms: o.created_ms,
            updated_ms: o.updated_ms,
            finished_ms: o.finished_ms,
            cancel_requested: o.cancel_requested,
            error: o.error,
        }
    }
}

/// The cluster state as version 2 wrote it: replica moves without bytes.
#[derive(Serialize, Deserialize)]
pub(crate) struct StateV2 {
    pub version: u64,
    pub routing_epoch: u64,
    pub cp_members: Vec<NodeId>,
    pub nodes: BTreeMap<NodeId, NodeInfo>,
    pub tenants: BTreeMap<String, Tenant>,
    pub placements: BTreeMap<PrgId, Placement>,
    pub moves: BTreeMap<MoveId, SlotMove>,
    pub replica_moves: BTreeMap<MoveId, ReplicaMoveV2>,
    pub next_move_id: MoveId,
    pub instances: BTreeMap<NodeId, u64>,
}

impl From<StateV2> for ClusterState {
    fn from(old: StateV2) -> Self {
        ClusterState::from(StateV3 {
            version: old.version,
            routing_epoch: old.routing_epoch,
            cp_members: old.cp_members,
            nodes: old.nodes,
            tenants: old.tenants,
            placements: old.placements,
            moves: old.moves,
            replica_moves: old.replica_moves.into_iter().map(|(id, m)| (id, m.into())).collect(),
            next_move_id: old.next_move_id,
            instances: old.instances,
        })
    }
}

/// The cluster state as version 3 wrote it: no operations, no retired PRGs.
#[derive(Serialize, Deserialize)]
pub(crate) struct StateV3 {
    pub version: u64,
    pub routing_epoch: u64,
    pub cp_members: Vec<NodeId>,
    pub nodes: BTreeMap<NodeId, NodeInfo>,
    pub tenants: BTreeMap<String, Tenant>,
    pub placements: BTreeMap<PrgId, Placement>,
    pub moves: BTreeMap<MoveId, SlotMove>,
    pub replica_moves: BTreeMap<MoveId, ReplicaMove>,
    pub next_move_id: MoveId,
    pub instances: BTreeMap<NodeId, u64>,
}

impl From<StateV3> for ClusterState {
    fn from(old: StateV3) -> Self {
        ClusterState {
            version: old.version,
            routing_epoch: old.routing_epoch,
            cp_members: old.cp_members,
            nodes: old.nodes,
            tenants: old.tenants,
            placements: old.placements,
            moves: old.moves,
            replica_moves: old.replica_moves,
            next_move_id: old.next_move_id,
            instances: old.instances,
            ..ClusterState::default()
        }
    }
}

/// The cluster state as version 4 wrote it: no shrink plans.
#[derive(Serialize, Deserialize)]
pub(crate) struct StateV4 {
    pub version: u64,
    pub routing_epoch: u64,
    pub cp_members: Vec<NodeId>,
    pub nodes: BTreeMap<NodeId, NodeInfo>,
    pub tenants: BTreeMap<String, Tenant>,
    pub placements: BTreeMap<PrgId, Placement>,
    pub moves: BTreeMap<MoveId, SlotMove>,
    pub replica_moves: BTreeMap<MoveId, ReplicaMove>,
    pub next_move_id: MoveId,
    pub instances: BTreeMap<NodeId, u64>,
    pub operations: BTreeMap<OpId, Operation>,
    pub next_op_id: OpId,
    pub retired_prgs: BTreeSet<PrgId>,
}

impl From<StateV4> for ClusterState {
    fn from(old: StateV4) -> Self {
        ClusterState {
            version: old.version,
            routing_epoch: old.routing_epoch,
            cp_members: old.cp_members,
            nodes: old.nodes,
            tenants: old.tenants,
            placements: old.placements,
            moves: old.moves,
            replica_moves: old.replica_moves,
            next_move_id: old.next_move_id,
            instances: old.instances,
            operations: old.operations,
            next_op_id: old.next_op_id,
            retired_prgs: old.retired_prgs,
            shrink_plans: BTreeMap::new(),
            drains: BTreeMap::new(),
            removed_nodes: BTreeSet::new(),
            cp_learners: Vec::new(),
            autoscale: Default::default(),
        }
    }
}

/// The cluster state as version 5 wrote it: no drain records, no removed
/// nodes.
#[derive(Serialize, Deserialize)]
pub(crate) struct StateV5 {
    pub version: u64,
    pub routing_epoch: u64,
    pub cp_members: Vec<NodeId>,
    pub nodes: BTreeMap<NodeId, NodeInfo>,
    pub tenants: BTreeMap<String, Tenant>,
    pub placements: BTreeMap<PrgId, Placement>,
    pub moves: BTreeMap<MoveId, SlotMove>,
    pub replica_moves: BTreeMap<MoveId, ReplicaMove>,
    pub next_move_id: MoveId,
    pub instances: BTreeMap<NodeId, u64>,
    pub operations: BTreeMap<OpId, Operation>,
    pub next_op_id: OpId,
    pub retired_prgs: BTreeSet<PrgId>,
    pub shrink_plans: BTreeMap<String, ShrinkPlan>,
}

impl From<StateV5> for ClusterState {
    fn from(old: StateV5) -> Self {
        let v4 = StateV4 {
            version: old.version,
            routing_epoch: old.routing_epoch,
            cp_members: old.cp_members,
            nodes: old.nodes,
            tenants: old.tenants,
            placements: old.placements,
            moves: old.moves,
            replica_moves: old.replica_moves,
            next_move_id: old.next_move_id,
            instances: old.instances,
            operations: old.operations,
            next_op_id: old.next_op_id,
            retired_prgs: old.retired_prgs,
        };
        ClusterState { shrink_plans: old.shrink_plans, ..ClusterState::from(v4) }
    }
}

/// The cluster state as version 6 wrote it: no control-plane learners.
#[derive(Serialize, Deserialize)]
pub(crate) struct StateV6 {
    pub version: u64,
    pub routing_epoch: u64,
    pub cp_members: Vec<NodeId>,
    pub nodes: BTreeMap<NodeId, NodeInfo>,
    pub tenants: BTreeMap<String, Tenant>,
    pub placements: BTreeMap<PrgId, Placement>,
    pub moves: BTreeMap<MoveId, SlotMove>,
    pub replica_moves: BTreeMap<MoveId, ReplicaMove>,
    pub next_move_id: MoveId,
    pub instances: BTreeMap<NodeId, u64>,
    pub operations: BTreeMap<OpId, Operation>,
    pub next_op_id: OpId,
    pub retired_prgs: BTreeSet<PrgId>,
    pub shrink_plans: BTreeMap<String, ShrinkPlan>,
    pub drains: BTreeMap<NodeId, DrainRecord>,
    pub removed_nodes: BTreeSet<NodeId>,
}

impl From<StateV6> for ClusterState {
    fn from(old: StateV6) -> Self {
        ClusterState {
            version: old.version,
            routing_epoch: old.routing_epoch,
            cp_members: old.cp_members,
            nodes: old.nodes,
            tenants: old.tenants,
            placements: old.placements,
            moves: old.moves,
            replica_moves: old.replica_moves,
            next_move_id: old.next_move_id,
            instances: old.instances,
            operations: old.operations,
            next_op_id: old.next_op_id,
            retired_prgs: old.retired_prgs,
            shrink_plans: old.shrink_plans,
            drains: old.drains,
            removed_nodes: old.removed_nodes,
            cp_learners: Vec::new(),
            autoscale: Default::default(),
        }
    }
}

/// The cluster state as version 7 wrote it: no autoscaling.
#[derive(Serialize, Deserialize, Default)]
pub(crate) struct StateV7 {
    pub version: u64,
    pub routing_epoch: u64,
    pub cp_members: Vec<NodeId>,
    pub nodes: BTreeMap<NodeId, NodeInfo>,
    pub tenants: BTreeMap<String, Tenant>,
    pub placements: BTreeMap<PrgId, Placement>,
    pub moves: BTreeMap<MoveId, SlotMove>,
    pub replica_moves: BTreeMap<MoveId, ReplicaMove>,
    pub next_move_id: MoveId,
    pub instances: BTreeMap<NodeId, u64>,
    pub operations: BTreeMap<OpId, Operation>,
    pub next_op_id: OpId,
    pub retired_prgs: BTreeSet<PrgId>,
    pub shrink_plans: BTreeMap<String, ShrinkPlan>,
    pub drains: BTreeMap<NodeId, DrainRecord>,
    pub removed_nodes: BTreeSet<NodeId>,
    pub cp_learners: Vec<NodeId>,
}

impl From<StateV7> for ClusterState {
    fn from(old: StateV7) -> Self {
        ClusterState {
            version: old.version,
            routing_epoch: old.routing_epoch,
            cp_members: old.cp_members,
            nodes: old.nodes,
            tenants: old.tenants,
            placements: old.placements,
            moves: old.moves,
            replica_moves: old.replica_moves,
            next_move_id: old.next_move_id,
            instances: old.instances,
            operations: old.operations,
            next_op_id: old.next_op_id,
            retired_prgs: old.retired_prgs,
            shrink_plans: old.shrink_plans,
            drains: old.drains,
            removed_nodes: old.removed_nodes,
            cp_learners: old.cp_learners,
            autoscale: Default::default(),
        }
    }
}

#[cfg(test)]
#[path = "state_format_tests.rs"]
mod tests;
