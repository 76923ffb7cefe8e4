//! How the control plane's state and log entries are written, and how
//! those written before they carried a format version are read.
//!
//! Version 0 is the layout from before moves existed: placements without
//! their genesis slots, no move records. Such a state is read into the
//! current one with every PRG owning the slots its tenant gave it at
//! creation (nothing could move then, so that is still true).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tidal_core::{ClusterState, NodeId, NodeInfo, Placement, PrgId, Tenant};
use tidal_raft::types::{decode, encode_versioned, split_version};

use crate::command::CpCommand;

/// The format version of persisted states and of new log entries.
pub const CP_FORMAT: u8 = 1;

pub fn encode_state(s: &ClusterState) -> Vec<u8> {
    encode_versioned(CP_FORMAT, s)
}

pub fn decode_state(b: &[u8]) -> Result<ClusterState, String> {
    match split_version(b) {
        (0, body) => decode::<StateV0>(body).map(ClusterState::from).map_err(|e| format!("state of version 0: {e}")),
        (CP_FORMAT, body) => decode(body).map_err(|e| format!("state of version {CP_FORMAT}: {e}")),
        (v, _) => Err(format!("state of version {v}, newer than this node understands ({CP_FORMAT})")),
    }
}

pub fn encode_command(c: &CpCommand) -> Vec<u8> {
    encode_versioned(CP_FORMAT, c)
}

/// Entries of version 0 hold the same enum: its first variants are
/// unchanged, and later ones were only ever written versioned.
pub fn decode_command(b: &[u8]) -> Result<CpCommand, String> {
    match split_version(b) {
        (0 | CP_FORMAT, body) => decode(body).map_err(|e| e.to_string()),
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
    }
}
