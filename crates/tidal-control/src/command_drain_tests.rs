use tidal_core::operation::{Budget, OpPhase, Operation};
use tidal_core::planner::drain::plan_drain;
use tidal_core::planner::scale::Sizes;
use tidal_core::{ClusterState, NodeState};

use super::super::ops::tests::{node, ok, refused};
use super::{drained, draining_now, hand_off_to, DRAIN};
use crate::command::{apply, CpCommand, CpReply};

/// `nodes` nodes (the first three the control plane's voters) with a
/// tenant of 16 slots in 4 PRGs.
fn cluster(nodes: u64) -> ClusterState {
    let mut s = ClusterState::default();
    for id in 1..=nodes {
        apply(&mut s, 0, &CpCommand::RegisterNode(node(id)));
    }
    apply(&mut s, 0, &CpCommand::SetCpMembers(vec![1, 2, 3]));
    apply(&mut s, 0, &CpCommand::CreateTenant { name: "t".into(), slots: 16, prgs: 4 });
    s
}

fn drain_op(s: &ClusterState, n: u64) -> Operation {
    let plan = plan_drain(s, n, &Sizes::default()).unwrap();
    Operation::new(DRAIN, plan, Budget::default(), 1000, 1000)
}

fn drain(s: &mut ClusterState, n: u64) -> u64 {
    let op = drain_op(s, n);
    match ok(s, CpCommand::DrainNode { node: n, op: Box::new(op) }) {
        CpReply::OperationStarted { id } => id,
        r => panic!("{r:?}"),
    }
}

#[test]
fn a_drain_marks_the_node_and_runs_its_replica_moves() {
    let mut s = cluster(5);
    let hosted = s.placements_hosted_on(4).count();
    assert!(hosted > 0);
    let id = drain(&mut s, 4);
    assert_eq!(s.nodes[&4].state, NodeState::Draining);
    let op = &s.operations[&id];
    assert_eq!((op.kind.as_str(), op.plan.replica_moves.len()), (DRAIN, hosted));
    assert_eq!(draining_now(&s, 4).map(|o| o.id), Some(id));
    assert_eq!((s.drains[&4].kind.as_str(), s.drains[&4].operation), (DRAIN, id));
    assert_eq!(draining_now(&s, 5), None);
    assert!(!drained(&s, 4));
    // Asking again while it runs is refused, naming the operation.
    let again = drain_op(&s, 4);
    let why = refused(&mut s, CpCommand::DrainNode { node: 4, op: Box::new(again) });
    assert!(why.contains(&format!("already draining (operation {id})")), "{why}");
    // The moves done (by hand here) and the operation over: drained.
    for m in s.operations[&id].plan.replica_moves.clone() {
        let p = s.placements.get_mut(&m.step.prg).unwrap();
        let at = p.members.iter().position(|x| *x == 4).unwrap();
        p.members[at] = m.step.to;
    }
    s.operations.get_mut(&id).unwrap().phase = OpPhase::Done;
    assert!(drained(&s, 4));
    // A node registering again stays Draining.
    ok(&mut s, CpCommand::RegisterNode(node(4)));
    assert_eq!(s.nodes[&4].state, NodeState::Draining);
    // Undrain: Active again, and eligible for new replicas.
    ok(&mut s, CpCommand::UndrainNode { node: 4 });
    assert_eq!(s.nodes[&4].state, NodeState::Active);
    assert!(!s.drains.contains_key(&4));
    assert!(refused(&mut s, CpCommand::UndrainNode { node: 4 }).contains("not draining"));
}

#[test]
fn undrain_stops_the_running_drain() {
    let mut s = cluster(5);
    let id = drain(&mut s, 5);
    ok(&mut s, CpCommand::UndrainNode { node: 5 });
    assert!(s.operations[&id].cancel_requested);
    assert_eq!(s.nodes[&5].state, NodeState::Active);
}

#[test]
fn drains_that_would_break_a_quorum_or_leave_replicas_are_refused() {
    // Three nodes: nowhere to put the replicas.
    let s = cluster(3);
    assert!(plan_drain(&s, 3, &Sizes::default()).is_err());
    // A plan made elsewhere that leaves a replica behind, or moves another
    // node's, or moves slots.
    let mut s = cluster(5);
    let mut op = drain_op(&s, 4);
    let kept = op.plan.replica_moves.pop().unwrap();
    let why = refused(&mut s, CpCommand::DrainNode { node: 4, op: Box::new(op.clone()) });
    assert!(why.contains(&format!("leaves {}'s replica on node 4", kept.step.prg)), "{why}");
    op.plan.replica_moves.push(kept.clone());
    let mut other = op.clone();
    other.plan.replica_moves[0].step.from = 1;
    let why = refused(&mut s, CpCommand::DrainNode { node: 4, op: Box::new(other) });
    assert!(why.contains("moves only its replicas"), "{why}");
    let mut named = op.clone();
    named.kind = "scale_out".into();
    assert!(refused(&mut s, CpCommand::DrainNode { node: 4, op: Box::new(named) })
        .contains("heal operation, not scale_out"));
    assert!(refused(&mut s, CpCommand::DrainNode { node: 9, op: Box::new(op.clone()) }).contains("no node 9"));
    // A stale plan.
    ok(&mut s, CpCommand::RegisterNode(node(6)));
    assert!(refused(&mut s, CpCommand::DrainNode { node: 4, op: Box::new(op) }).contains("changed since the plan"));

    // Two of the three control-plane voters: the second would leave one.
    let mut s = cluster(6);
    drain(&mut s, 1);
    let id = s.running_operation().unwrap().id;
    s.operations.get_mut(&id).unwrap().phase = OpPhase::Done;
    let op = drain_op(&s, 2);
    let why = refused(&mut s, CpCommand::DrainNode { node: 2, op: Box::new(op) });
    assert!(why.contains("control-plane voter") && why.contains("1 of the 3 voters"), "{why}");
    // A node that is not a voter still drains.
    drain(&mut s, 5);
}

#[test]
fn only_an_empty_node_that_is_no_voter_leaves_and_its_id_never_returns() {
    let mut s = cluster(5);
    // Node 5 holds replicas: refused until drained.
    let held = s.placements_hosted_on(5).count();
    assert!(held > 0);
    let why = refused(&mut s, CpCommand::RemoveNode { node: 5 });
    assert!(why.contains("still holds replicas") && why.contains("drain it first"), "{why}");
    assert!(refused(&mut s, CpCommand::RemoveNode { node: 9 }).contains("no node 9"));
    let id = drain(&mut s, 5);
    // Drained by hand; while the operation runs, removal waits for it.
    for m in s.operations[&id].plan.replica_moves.clone() {
        let p = s.placements.get_mut(&m.step.prg).unwrap();
        let at = p.members.iter().position(|x| *x == 5).unwrap();
        p.members[at] = m.step.to;
    }
    assert!(refused(&mut s, CpCommand::RemoveNode { node: 5 }).contains("being drained"));
    s.operations.get_mut(&id).unwrap().phase = OpPhase::Done;
    ok(&mut s, CpCommand::RemoveNode { node: 5 });
    assert!(!s.nodes.contains_key(&5) && !s.drains.contains_key(&5) && s.removed_nodes.contains(&5));
    // Its id does not come back, by either registration.
    assert!(refused(&mut s, CpCommand::RegisterNode(node(5))).contains("was removed"));
    let r = tidal_core::Registration { info: node(5), instance: 1, replace: true };
    assert!(refused(&mut s, CpCommand::Register(r)).contains("was removed"));
    // A node that votes in the control plane (or is catching up to) stays,
    // even empty, until its vote has moved.
    let mut s = cluster(4);
    s.placements.values_mut().for_each(|p| p.members.retain(|m| *m != 1));
    let why = refused(&mut s, CpCommand::RemoveNode { node: 1 });
    assert!(why.contains("votes in the control plane"), "{why}");
    ok(&mut s, CpCommand::SetCpVoters { voters: vec![2, 3], learners: vec![1] });
    assert!(refused(&mut s, CpCommand::RemoveNode { node: 1 }).contains("votes in the control plane"));
    ok(&mut s, CpCommand::SetCpVoters { voters: vec![2, 3, 4], learners: vec![] });
    ok(&mut s, CpCommand::RemoveNode { node: 1 });
    // Too few nodes would be left.
    let mut s = cluster(4);
    s.nodes.get_mut(&3).unwrap().state = NodeState::Draining;
    s.placements.values_mut().for_each(|p| p.members.retain(|m| *m != 4));
    let why = refused(&mut s, CpCommand::RemoveNode { node: 4 });
    assert!(why.contains("would leave 2 active nodes"), "{why}");
}

#[test]
fn a_draining_leader_hands_off_only_to_an_active_voter() {
    let mut s = cluster(5);
    for id in [1, 2] {
        s.nodes.get_mut(&id).expect("registered").state = NodeState::Draining;
    }
    // Nodes 1 and 2 share the group: neither hands to the other.
    assert_eq!(hand_off_to(&s, 1, [1, 2, 3]), Some(3));
    assert_eq!(hand_off_to(&s, 2, [1, 2, 3]), Some(3));
    assert_eq!(hand_off_to(&s, 2, [2, 4, 5]), Some(4));
    // No Active voter besides itself, or one the state does not know: it keeps leading.
    assert_eq!(hand_off_to(&s, 1, [1, 2]), None);
    assert_eq!(hand_off_to(&s, 1, [1, 9]), None);
}
