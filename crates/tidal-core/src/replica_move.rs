//! Replica moves: one PRG member handed from node X to node Y, the record
//! the control plane keeps of each, the checks a new one must pass, and the
//! pure decisions of its step machine.
//!
//! ```text
//!  AddingLearner ──(Y caught up)──> Promoting ──(joint consensus done)──> Done
//!        │                              (rolls forward only)
//!        └──> RollingBack ──> RolledBack
//! ```
//!
//! * **AddingLearner**: the placement lists Y as a learner, so Y starts a
//!   replica that never bootstraps; the PRG's leader adds Y as a learner,
//!   which catches up by snapshot and log.
//! * **Promoting**: the leader changes the voters from {.., X} to {.., Y}
//!   (openraft's joint consensus: both configurations must agree while it
//!   runs), then the control plane records Y as a member in X's place.
//!   From the membership change on, the move only rolls forward.
//! * X sees it is no longer placed there and stops and purges its replica.
//!
//! The PRG keeps three voters throughout: Y votes only once it is caught up.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::cluster::{ClusterState, NodeState};
use crate::ids::{NodeId, PrgId};
use crate::ownership::MoveId;
use crate::placement::REPLICAS;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplicaPhase {
    AddingLearner,
    Promoting,
    Done,
    RollingBack,
    RolledBack,
}

impl ReplicaPhase {
    pub fn is_finished(self) -> bool {
        matches!(self, ReplicaPhase::Done | ReplicaPhase::RolledBack)
    }

    /// The voters may have changed: only forward from here.
    pub fn is_committed(self) -> bool {
        matches!(self, ReplicaPhase::Promoting | ReplicaPhase::Done)
    }

    pub fn may_become(self, next: ReplicaPhase) -> bool {
        use ReplicaPhase::*;
        matches!(
            (self, next),
            (AddingLearner, Promoting) | (Promoting, Done) | (AddingLearner, RollingBack) | (RollingBack, RolledBack)
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            ReplicaPhase::AddingLearner => "adding-learner",
            ReplicaPhase::Promoting => "promoting",
            ReplicaPhase::Done => "done",
            ReplicaPhase::RollingBack => "rolling-back",
            ReplicaPhase::RolledBack => "rolled-back",
        }
    }
}

/// A replica move as the control plane records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaMove {
    pub id: MoveId,
    pub prg: PrgId,
    pub from: NodeId,
    pub to: NodeId,
    pub phase: ReplicaPhase,
    /// Entries the learner was behind at the last look (leader's view).
    pub lag: Option<u64>,
    /// Bytes the PRG's leader has sent the learner (entries and snapshot
    /// pieces it took), at the last look. A new leader counts from 0.
    pub bytes: u64,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub finished_ms: Option<u64>,
    pub cancel_requested: bool,
    pub error: Option<String>,
}

impl ReplicaMove {
    /// Move `id` of `prg`'s replica from node `from` to node `to`, started
    /// at `now_ms`: its learner is about to be added.
    pub fn new(id: MoveId, prg: PrgId, from: NodeId, to: NodeId, now_ms: u64) -> Self {
        ReplicaMove {
            id,
            prg,
            from,
            to,
            phase: ReplicaPhase::AddingLearner,
            lag: None,
            bytes: 0,
            created_ms: now_ms,
            updated_ms: now_ms,
            finished_ms: None,
            cancel_requested: false,
            error: None,
        }
    }

    /// The voters once the move is done: X's place taken by Y.
    pub fn voters_after(&self, members: &[NodeId]) -> Vec<NodeId> {
        members.iter().copied().filter(|m| *m != self.from).chain(std::iter::once(self.to)).collect()
    }
}

/// Why a replica move cannot start. Nothing changes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReplicaMoveError {
    #[error("PRG {0} does not exist")]
    UnknownPrg(PrgId),
    #[error("unknown node {0}")]
    UnknownNode(NodeId),
    #[error("node {node} holds no replica of {prg} (members {members:?})")]
    NotAMember { prg: PrgId, node: NodeId, members: Vec<NodeId> },
    #[error("node {node} already holds a replica of {prg}")]
    AlreadyAMember { prg: PrgId, node: NodeId },
    #[error("node {0} is draining: no new replicas go there")]
    Draining(NodeId),
    #[error("{prg} would have two replicas in zone '{zone}' while {zones} zones exist")]
    SameZone { prg: PrgId, zone: String, zones: usize },
    #[error("{prg} is already moving in move {id}")]
    Busy { prg: PrgId, id: MoveId },
}

/// Check a request to move `prg`'s replica from node `from` to node `to`
/// against `state`; `busy` names a move already under way on the PRG.
pub fn check_replica_move(
    state: &ClusterState,
    prg: &PrgId,
    from: NodeId,
    to: NodeId,
    busy: Option<MoveId>,
) -> Result<(), ReplicaMoveError> {
    let p = state.placements.get(prg).ok_or_else(|| ReplicaMoveError::UnknownPrg(prg.clone()))?;
    if !p.members.contains(&from) {
        return Err(ReplicaMoveError::NotAMember { prg: prg.clone(), node: from, members: p.members.clone() });
    }
    let target = state.nodes.get(&to).ok_or(ReplicaMoveError::UnknownNode(to))?;
    if p.members.contains(&to) {
        return Err(ReplicaMoveError::AlreadyAMember { prg: prg.clone(), node: to });
    }
    if target.state == NodeState::Draining {
        return Err(ReplicaMoveError::Draining(to));
    }
    let zones: BTreeSet<&str> =
        state.nodes.values().filter(|n| n.state == NodeState::Active).map(|n| n.zone.as_str()).collect();
    if zones.len() >= REPLICAS {
        let staying = p.members.iter().filter(|m| **m != from).filter_map(|m| state.nodes.get(m));
        if let Some(n) = staying.into_iter().find(|n| n.zone == target.zone) {
            return Err(ReplicaMoveError::SameZone { prg: prg.clone(), zone: n.zone.clone(), zones: zones.len() });
        }
    }
    if let Some(id) = busy {
        return Err(ReplicaMoveError::Busy { prg: prg.clone(), id });
    }
    Ok(())
}

/// Where a failed step leaves the move: before the voters change it rolls
/// back, after it the step is retried.
pub fn on_failure(phase: ReplicaPhase) -> ReplicaPhase {
    match phase {
        ReplicaPhase::AddingLearner => ReplicaPhase::RollingBack,
        other => other,
    }
}

/// A learner this many entries behind the leader is caught up enough to
/// become a voter.
pub const CAUGHT_UP_ENTRIES: u64 = 64;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{NodeInfo, Placement};

    fn state(zones: &[&str]) -> ClusterState {
        let mut s = ClusterState::default();
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
        let prg = PrgId::new("t", 0);
        s.placements.insert(prg.clone(), Placement::new(prg, vec![1, 2, 3], 1, Vec::new()));
        s
    }

    #[test]
    fn a_valid_move_passes_and_bad_ones_say_why() {
        let prg = PrgId::new("t", 0);
        let s = state(&["a", "a", "a", "a"]);
        assert_eq!(check_replica_move(&s, &prg, 3, 4, None), Ok(()));
        assert!(matches!(
            check_replica_move(&s, &PrgId::new("t", 9), 3, 4, None),
            Err(ReplicaMoveError::UnknownPrg(_))
        ));
        assert!(matches!(check_replica_move(&s, &prg, 4, 3, None), Err(ReplicaMoveError::NotAMember { .. })));
        assert_eq!(check_replica_move(&s, &prg, 3, 9, None), Err(ReplicaMoveError::UnknownNode(9)));
        assert!(matches!(check_replica_move(&s, &prg, 3, 2, None), Err(ReplicaMoveError::AlreadyAMember { .. })));
        assert!(matches!(check_replica_move(&s, &prg, 3, 4, Some(7)), Err(ReplicaMoveError::Busy { id: 7, .. })));
        let mut d = s.clone();
        d.nodes.get_mut(&4).unwrap().state = NodeState::Draining;
        assert_eq!(check_replica_move(&d, &prg, 3, 4, None), Err(ReplicaMoveError::Draining(4)));
    }

    #[test]
    fn zones_stay_distinct_when_there_are_enough() {
        let prg = PrgId::new("t", 0);
        let s = state(&["a", "b", "c", "a", "c"]);
        // Node 4 is in zone a with node 1, which stays.
        assert!(matches!(check_replica_move(&s, &prg, 3, 4, None), Err(ReplicaMoveError::SameZone { .. })));
        // Node 5 is in zone c, the zone node 3 leaves.
        assert_eq!(check_replica_move(&s, &prg, 3, 5, None), Ok(()));
    }

    #[test]
    fn the_voters_after_replace_the_old_member() {
        let m = ReplicaMove::new(1, PrgId::new("t", 0), 1, 4, 0);
        assert_eq!(m.voters_after(&[1, 2, 3]), vec![2, 3, 4]);
        assert_eq!(on_failure(ReplicaPhase::AddingLearner), ReplicaPhase::RollingBack);
        assert_eq!(on_failure(ReplicaPhase::Promoting), ReplicaPhase::Promoting);
        assert!(!ReplicaPhase::Promoting.may_become(ReplicaPhase::RollingBack));
    }
}
