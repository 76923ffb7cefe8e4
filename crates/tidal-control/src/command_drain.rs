//! How draining a node changes the cluster state. [`drain`] marks the node
//! Draining (no new replica goes there) and starts the operation that
//! moves every replica it hosts elsewhere (`tidal_core::planner::drain`);
//! [`undrain`] makes it Active again, stopping that operation if it still
//! runs (the replicas already moved stay where they are). [`remove`]
//! takes a node that holds no replica out of the cluster for good. Each
//! checks everything first and changes nothing when it refuses.

use tidal_core::cluster::DrainRecord;
use tidal_core::operation::{OpId, Operation};
use tidal_core::{ClusterState, NodeId, NodeState};

use super::ops;
pub use crate::self_heal::HEAL;

/// The kind of the operations that drain a node an operator (or SIGTERM)
/// asked to drain; those that heal a lost one are [`HEAL`].
pub const DRAIN: &str = "drain";

pub(super) fn drain(state: &mut ClusterState, now_ms: u64, node: NodeId, op: &Operation) -> Result<OpId, String> {
    state.nodes.get(&node).ok_or_else(|| format!("no node {node}"))?;
    if op.kind != DRAIN && op.kind != HEAL {
        return Err(format!("a drain runs as a {DRAIN} or {HEAL} operation, not {}", op.kind));
    }
    if let Some(running) = draining_now(state, node) {
        return Err(format!("node {node} is already draining (operation {})", running.id));
    }
    cp_quorum_after(state, node)?;
    let plan = &op.plan;
    if !plan.add_nodes.is_empty() || !plan.new_prgs.is_empty() || !plan.slot_moves.is_empty() {
        return Err("a drain plan only moves replicas".into());
    }
    if let Some(m) = plan.replica_moves.iter().find(|m| m.step.from != node) {
        return Err(format!(
            "a drain of node {node} moves only its replicas, not {}'s from node {}",
            m.step.prg, m.step.from
        ));
    }
    if let Some(p) = state.placements_hosted_on(node).find(|p| !plan.replica_moves.iter().any(|m| m.step.prg == p.prg))
    {
        return Err(format!("the plan leaves {}'s replica on node {node}", p.prg));
    }
    let mut scratch = state.clone();
    scratch.nodes.get_mut(&node).expect("checked").state = NodeState::Draining;
    let id = ops::start(&mut scratch, now_ms, op)?;
    scratch.drains.insert(node, DrainRecord { kind: op.kind.clone(), operation: id, started_ms: now_ms });
    *state = scratch;
    Ok(id)
}

/// Refuse when `node` is a control-plane voter and, with it and every
/// other draining voter gone, the voters left could not form a quorum.
fn cp_quorum_after(state: &ClusterState, node: NodeId) -> Result<(), String> {
    if !state.cp_members.contains(&node) {
        return Ok(());
    }
    let total = state.cp_members.len();
    let quorum = total / 2 + 1;
    let left = state
        .cp_members
        .iter()
        .filter(|m| **m != node && state.nodes.get(m).is_none_or(|n| n.state == NodeState::Active))
        .count();
    if left < quorum {
        return Err(format!(
            "node {node} is a control-plane voter: with it drained {left} of the {total} voters would be left, \
             below the quorum of {quorum}"
        ));
    }
    Ok(())
}

/// The operation that drains `node` now, if one runs.
pub fn draining_now(state: &ClusterState, node: NodeId) -> Option<&Operation> {
    let id = state.drains.get(&node)?.operation;
    state.operations.get(&id).filter(|o| !o.phase.is_finished())
}

/// Whether `node`'s drain has ended: it is Draining, hosts no replica,
/// no operation drains it, and its control-plane vote (if it had one) has
/// moved to another node.
pub fn drained(state: &ClusterState, node: NodeId) -> bool {
    state.nodes.get(&node).is_some_and(|n| n.state == NodeState::Draining)
        && state.placements_hosted_on(node).next().is_none()
        && draining_now(state, node).is_none()
        && !in_cp(state, node)
}

/// Which of a group's `voters` a draining `node` that leads the group
/// hands its leadership to: the first that is Active. Never another
/// Draining node: two draining nodes sharing groups would hand their
/// leaderships back and forth every round, each hand-off restarting the
/// group's replication (a learner's copy among it), and the drain would
/// never end. None when no other voter is Active: the node keeps leading
/// until a replica move gives the group one.
pub fn hand_off_to(state: &ClusterState, node: NodeId, voters: impl IntoIterator<Item = NodeId>) -> Option<NodeId> {
    voters.into_iter().find(|v| *v != node && state.nodes.get(v).is_some_and(|n| n.state == NodeState::Active))
}

/// Whether `node` votes in the control plane or is catching up to.
pub fn in_cp(state: &ClusterState, node: NodeId) -> bool {
    state.cp_members.contains(&node) || state.cp_learners.contains(&node)
}

pub(super) fn undrain(state: &mut ClusterState, now_ms: u64, node: NodeId) -> Result<(), String> {
    let info = state.nodes.get(&node).ok_or_else(|| format!("no node {node}"))?;
    if info.state != NodeState::Draining {
        return Err(format!("node {node} is not draining"));
    }
    let mut scratch = state.clone();
    if let Some(op) = draining_now(&scratch, node).filter(|o| !o.cancel_requested).map(|o| o.id) {
        ops::cancel(&mut scratch, now_ms, op)?;
    }
    scratch.nodes.get_mut(&node).expect("checked").state = NodeState::Active;
    scratch.drains.remove(&node);
    *state = scratch;
    Ok(())
}

/// Why `node` cannot leave the cluster now, if it cannot: it is unknown,
/// still hosts replicas, is being drained, still votes in the control
/// plane (its vote moves while it is Draining), or
/// would leave fewer than 3 active nodes.
pub fn check_remove(state: &ClusterState, node: NodeId) -> Result<(), String> {
    if !state.nodes.contains_key(&node) {
        return Err(format!("no node {node}"));
    }
    let hosted: Vec<String> = state.placements_hosted_on(node).map(|p| p.prg.to_string()).collect();
    if !hosted.is_empty() {
        return Err(format!("node {node} still holds replicas of {}: drain it first", hosted.join(", ")));
    }
    if let Some(op) = draining_now(state, node) {
        return Err(format!("node {node} is being drained (operation {}): wait for it to finish", op.id));
    }
    if in_cp(state, node) {
        return Err(format!(
            "node {node} votes in the control plane ({:?}); drain it first, and its vote moves to another node",
            state.cp_members
        ));
    }
    let active = state.nodes.values().filter(|n| n.id != node && n.state == NodeState::Active).count();
    if active < tidal_core::placement::REPLICAS {
        return Err(format!(
            "removing node {node} would leave {active} active nodes; PRGs need {} on distinct nodes",
            tidal_core::placement::REPLICAS
        ));
    }
    Ok(())
}

/// Take `node` out of the cluster (see [`check_remove`]); its id does not
/// register again.
pub(super) fn remove(state: &mut ClusterState, node: NodeId) -> Result<(), String> {
    check_remove(state, node)?;
    forget(state, node);
    Ok(())
}

/// Forget `node`: no longer a node, and never again one.
pub(super) fn forget(state: &mut ClusterState, node: NodeId) {
    state.nodes.remove(&node);
    state.drains.remove(&node);
    state.instances.remove(&node);
    state.removed_nodes.insert(node);
}

#[cfg(test)]
#[path = "command_drain_tests.rs"]
mod tests;
