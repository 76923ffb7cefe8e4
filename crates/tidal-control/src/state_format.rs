//! How the control plane's state and log entries are written, and how
//! those written before they carried a format version are read.
//!
//! Version 0 is the layout from before moves existed: placements without
//! their genesis slots, no move records. Such a state is read into the
//! current one with every PRG owning the slots its tenant gave it at
//! creation (nothing could move then, so that is still true).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tidal_core::ownership::MoveId;
use tidal_core::replica_move::{ReplicaMove, ReplicaPhase};
use tidal_core::slot_move::SlotMove;
use tidal_core::{ClusterState, NodeId, NodeInfo, Placement, PrgId, Tenant};
use tidal_raft::types::{decode, encode_versioned, split_version};

use crate::command::CpCommand;

/// The format version of persisted states and of new log entries: 4 since
/// the state holds scaling operations and retired PRGs (3: a replica move
/// records the bytes its learner has taken; 2: each node's data-directory
/// instance).
pub const CP_FORMAT: u8 = 4;

pub fn encode_state(s: &ClusterState) -> Vec<u8> {
    encode_versioned(CP_FORMAT, s)
}

pub fn decode_state(b: &[u8]) -> Result<ClusterState, String> {
    match split_version(b) {
        (0, body) => decode::<StateV0>(body).map(ClusterState::from).map_err(|e| format!("state of version 0: {e}")),
        (1, body) => decode::<StateV1>(body).map(ClusterState::from).map_err(|e| format!("state of version 1: {e}")),
        (2, body) => decode::<StateV2>(body).map(ClusterState::from).map_err(|e| format!("state of version 2: {e}")),
        (3, body) => decode::<StateV3>(body).map(ClusterState::from).map_err(|e| format!("state of version 3: {e}")),
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

#[cfg(test)]
mod tests {
    use super::*;
    use tidal_core::NodeState;
    use tidal_raft::types::encode;

    fn old_state() -> StateV0 {
        let mut s = StateV0 { version: 9, routing_epoch: 1, cp_members: vec![1, 2, 3], ..Default::default() };
        for id in 1..=3 {
            let info = NodeInfo {
                id,
                peer_addr: format!("127.0.0.1:{}", 7000 + id),
                client_addr: String::new(),
                http_addr: String::new(),
                zone: "z".into(),
                state: NodeState::Active,
            };
            s.nodes.insert(id, info);
        }
        s.tenants.insert("default".into(), Tenant::new("default", 10, 3));
        for i in 0..3 {
            let prg = PrgId::new("default", i);
            s.placements
                .insert(prg.clone(), PlacementV0 { prg, members: vec![1, 2, 3], epoch: 1, leader_hint: Some(2) });
        }
        s
    }

    #[test]
    fn a_state_from_before_versioning_reads_with_genesis_slots() {
        let bytes = encode(&old_state());
        let s = decode_state(&bytes).unwrap();
        assert_eq!(s.version, 9);
        assert_eq!(s.placements.len(), 3);
        let t = &s.tenants["default"];
        for p in s.placements.values() {
            let owned: Vec<u32> = p.genesis.iter().flat_map(|r| r.clone()).collect();
            assert_eq!(owned, t.slots_of(p.prg.index), "{}", p.prg);
            assert_eq!(p.leader_hint, Some(2));
        }
        assert!(s.moves.is_empty());
        // And it round-trips in the current format.
        assert_eq!(decode_state(&encode_state(&s)).unwrap(), s);
    }

    #[test]
    fn commands_from_before_versioning_still_decode() {
        let old = CpCommand::SetCpMembers(vec![1, 2, 3]);
        assert_eq!(decode_command(&encode(&old)).unwrap(), old);
        let new = CpCommand::CancelMove { id: 4 };
        assert_eq!(decode_command(&encode_command(&new)).unwrap(), new);
        assert!(decode_command(&encode_versioned(7, &new)).is_err());
        assert_eq!(decode_command(&encode_versioned(1, &new)).unwrap(), new);
    }

    #[test]
    fn a_state_of_version_1_reads_without_instances() {
        let mut s = decode_state(&encode(&old_state())).unwrap();
        s.next_move_id = 7;
        let v1 = StateV1 {
            version: s.version,
            routing_epoch: s.routing_epoch,
            cp_members: s.cp_members.clone(),
            nodes: s.nodes.clone(),
            tenants: s.tenants.clone(),
            placements: s.placements.clone(),
            moves: s.moves.clone(),
            replica_moves: BTreeMap::new(),
            next_move_id: s.next_move_id,
        };
        let back = decode_state(&encode_versioned(1, &v1)).unwrap();
        assert_eq!(back, s);
        assert!(back.instances.is_empty());
    }

    #[test]
    fn a_state_of_version_2_reads_its_replica_moves_without_bytes() {
        let mut s = decode_state(&encode(&old_state())).unwrap();
        s.instances.insert(1, 77);
        let m = ReplicaMoveV2 {
            id: 3,
            prg: PrgId::new("default", 1),
            from: 3,
            to: 4,
            phase: ReplicaPhase::Promoting,
            lag: Some(0),
            created_ms: 10,
            updated_ms: 20,
            finished_ms: None,
            cancel_requested: false,
            error: None,
        };
        let v2 = StateV2 {
            version: s.version,
            routing_epoch: s.routing_epoch,
            cp_members: s.cp_members.clone(),
            nodes: s.nodes.clone(),
            tenants: s.tenants.clone(),
            placements: s.placements.clone(),
            moves: s.moves.clone(),
            replica_moves: BTreeMap::from([(3, m.clone())]),
            next_move_id: 4,
            instances: s.instances.clone(),
        };
        let back = decode_state(&encode_versioned(2, &v2)).unwrap();
        let r = &back.replica_moves[&3];
        assert_eq!((r.phase, r.lag, r.bytes, r.updated_ms), (ReplicaPhase::Promoting, Some(0), 0, 20));
        assert_eq!(back.instances, s.instances);
        assert_eq!(decode_state(&encode_state(&back)).unwrap(), back);
    }

    #[test]
    fn a_state_of_version_3_reads_without_operations() {
        let s = decode_state(&encode(&old_state())).unwrap();
        let v3 = StateV3 {
            version: s.version,
            routing_epoch: s.routing_epoch,
            cp_members: s.cp_members.clone(),
            nodes: s.nodes.clone(),
            tenants: s.tenants.clone(),
            placements: s.placements.clone(),
            moves: s.moves.clone(),
            replica_moves: s.replica_moves.clone(),
            next_move_id: s.next_move_id,
            instances: s.instances.clone(),
        };
        let back = decode_state(&encode_versioned(3, &v3)).unwrap();
        assert_eq!(back, s);
        assert!(back.operations.is_empty() && back.retired_prgs.is_empty());
    }
}
