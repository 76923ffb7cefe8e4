use tidal_core::operation::{Budget, OpPhase};
use tidal_core::planner::scale::Sizes;
use tidal_core::shrink::{plan_shrink, Layout, PlanState, ShrinkRequest, MAX_UNDO_ATTEMPTS};
use tidal_core::{ClusterState, NodeState, PrgId};

use super::super::ops::tests::{node, ok, refused};
use super::wants_advance;
use crate::command::{apply, CpCommand, CpReply};

/// Four nodes with a tenant of 16 slots in 4 PRGs.
fn cluster() -> ClusterState {
    let mut s = ClusterState::default();
    for id in 1..=4 {
        apply(&mut s, 0, &CpCommand::RegisterNode(node(id)));
    }
    apply(&mut s, 0, &CpCommand::CreateTenant { name: "t".into(), slots: 16, prgs: 4 });
    s
}

/// Record the easy form's plan `id` for `req`.
fn draft(s: &mut ClusterState, id: &str, nodes: Option<u64>, prgs: u32) {
    let req = ShrinkRequest { nodes, prgs: [("t".to_string(), prgs)].into() };
    let plan = plan_shrink(s, id, &req, &Sizes::default(), 5).unwrap();
    ok(s, CpCommand::CreateShrinkPlan(Box::new(plan)));
}

fn arm(s: &mut ClusterState, id: &str) -> u64 {
    let cmd = CpCommand::ArmShrinkPlan { id: id.into(), budget: Budget::default(), gate_timeout_ms: 1000 };
    match ok(s, cmd) {
        CpReply::OperationStarted { id } => id,
        r => panic!("{r:?}"),
    }
}

/// What operation `op` would leave behind if it ran every slot move of
/// its plan and ended in `phase` (the move executor's work, done by hand).
fn run_slot_moves(s: &mut ClusterState, op: u64, how_many: usize, phase: OpPhase) {
    let o = s.operations.get_mut(&op).unwrap();
    let moves = o.plan.slot_moves.clone();
    o.phase = phase;
    for m in moves.iter().take(how_many) {
        let t = s.tenants.get_mut(&m.tenant).unwrap();
        for slot in &m.slots {
            assert_eq!(t.owner[*slot as usize], m.from.index);
            t.owner[*slot as usize] = m.to.index;
        }
        s.routing_epoch += 1;
    }
}

#[test]
fn an_armed_plan_runs_as_an_operation_and_completes_by_deleting_its_drained_prgs() {
    let mut s = cluster();
    draft(&mut s, "p", None, 2);
    let op = arm(&mut s, "p");
    let plan = &s.shrink_plans["p"];
    assert_eq!((plan.state, plan.operation, plan.armed_ms), (PlanState::Armed, Some(op), Some(10)));
    let o = &s.operations[&op];
    assert_eq!((o.kind.as_str(), o.plan.slot_moves.len()), ("scale_in", plan.slot_moves.len()));
    // Its PRGs are frozen to operators meanwhile.
    let why = refused(
        &mut s,
        CpCommand::StartMove { tenant: "t".into(), slots: vec![0], from: None, to: PrgId::new("t", 1) },
    );
    assert!(why.contains("frozen"), "{why}");
    let why = refused(&mut s, CpCommand::StartReplicaMove { prg: PrgId::new("t", 0), from: 1, to: 4 });
    assert!(why.contains("frozen"), "{why}");
    refused(&mut s, CpCommand::AddPrgs { tenant: "t".into(), count: 1, members: None, expect_epoch: None });
    // Armed once, and not while its operation runs.
    refused(&mut s, CpCommand::ArmShrinkPlan { id: "p".into(), budget: Budget::default(), gate_timeout_ms: 1000 });
    assert!(!wants_advance(&s, "p"));
    refused(&mut s, CpCommand::AdvanceShrinkPlan { id: "p".into() });

    let n = s.operations[&op].plan.slot_moves.len();
    run_slot_moves(&mut s, op, n, OpPhase::Done);
    assert!(wants_advance(&s, "p"));
    let epoch = s.routing_epoch;
    ok(&mut s, CpCommand::AdvanceShrinkPlan { id: "p".into() });
    let plan = &s.shrink_plans["p"];
    assert_eq!((plan.state, plan.finished_ms), (PlanState::Completed, Some(10)));
    assert_eq!(s.routing_epoch, epoch + 1, "one epoch bump for the deleted PRGs");
    for p in &plan.remove_prgs {
        assert!(!s.placements.contains_key(p) && s.retired_prgs.contains(p), "{p}");
    }
    assert_eq!(s.placements.len(), 2);
    assert!(!wants_advance(&s, "p"));
    refused(&mut s, CpCommand::CancelShrinkPlan { id: "p".into() });
}

#[test]
fn a_cancelled_armed_plan_is_undone_until_the_layout_is_back() {
    let mut s = cluster();
    let before = Layout::of(&s);
    draft(&mut s, "p", None, 2);
    let op = arm(&mut s, "p");
    ok(&mut s, CpCommand::CancelShrinkPlan { id: "p".into() });
    assert!(s.operations[&op].cancel_requested && s.shrink_plans["p"].rolling_back);
    refused(&mut s, CpCommand::CancelShrinkPlan { id: "p".into() });

    // The operation stops after one slot batch moved: an undo starts.
    run_slot_moves(&mut s, op, 1, OpPhase::Cancelled);
    assert!(wants_advance(&s, "p"));
    ok(&mut s, CpCommand::AdvanceShrinkPlan { id: "p".into() });
    let plan = &s.shrink_plans["p"];
    let undo = plan.operation.unwrap();
    assert_ne!(undo, op);
    assert_eq!((plan.state, plan.undo_attempts), (PlanState::Armed, 1));
    let u = &s.operations[&undo];
    assert_eq!(u.kind, "scale_in_undo");
    assert_eq!(u.plan.slot_moves.len(), 1, "{:?}", u.plan.slot_moves);
    let (back, moved) = (&u.plan.slot_moves[0], &s.operations[&op].plan.slot_moves[0]);
    assert_eq!((&back.from, &back.to, &back.slots), (&moved.to, &moved.from, &moved.slots));

    run_slot_moves(&mut s, undo, 1, OpPhase::Done);
    ok(&mut s, CpCommand::AdvanceShrinkPlan { id: "p".into() });
    assert_eq!(s.shrink_plans["p"].state, PlanState::RolledBack);
    assert_eq!(Layout::of(&s), before);
    assert_eq!(s.placements.len(), 4, "no PRG is deleted");
}

#[test]
fn an_undo_that_fails_is_tried_again_and_then_left_to_an_operator() {
    let mut s = cluster();
    draft(&mut s, "p", None, 2);
    let op = arm(&mut s, "p");
    // The operation fails on its own after a batch: the plan is undone.
    run_slot_moves(&mut s, op, 1, OpPhase::Failed);
    s.operations.get_mut(&op).unwrap().error = Some("a gate did not pass".into());
    for attempt in 1..=MAX_UNDO_ATTEMPTS {
        assert!(wants_advance(&s, "p"));
        ok(&mut s, CpCommand::AdvanceShrinkPlan { id: "p".into() });
        let plan = &s.shrink_plans["p"];
        assert_eq!((plan.undo_attempts, plan.error.as_deref()), (attempt, Some("a gate did not pass")));
        let undo = plan.operation.unwrap();
        s.operations.get_mut(&undo).unwrap().phase = OpPhase::Failed;
    }
    assert!(!wants_advance(&s, "p"), "it gives up after {MAX_UNDO_ATTEMPTS} attempts");
    refused(&mut s, CpCommand::AdvanceShrinkPlan { id: "p".into() });
    assert_eq!(s.shrink_plans["p"].state, PlanState::Armed);
    // An operator's cancel tries again.
    ok(&mut s, CpCommand::CancelShrinkPlan { id: "p".into() });
    assert!(wants_advance(&s, "p"));
    ok(&mut s, CpCommand::AdvanceShrinkPlan { id: "p".into() });
    assert_eq!(s.shrink_plans["p"].undo_attempts, 1);
    refused(&mut s, CpCommand::CancelShrinkPlan { id: "p".into() });
}

#[test]
fn a_plan_that_removes_a_node_drains_it_while_armed_and_removes_it_when_done() {
    let mut s = cluster();
    draft(&mut s, "p", Some(3), 4);
    let gone = s.shrink_plans["p"].remove_nodes.clone();
    assert_eq!(gone.len(), 1);
    let n = gone[0];
    // Armed: the node takes nothing new (a control-plane voter too: its
    // vote moves while it is Draining).
    s.cp_members.push(n);
    let op = arm(&mut s, "p");
    assert_eq!(s.nodes[&n].state, NodeState::Draining);
    // Its replicas moved (by hand here) and the operation done: removed
    // once its vote has moved.
    for m in s.operations[&op].plan.replica_moves.clone() {
        let p = s.placements.get_mut(&m.step.prg).unwrap();
        let at = p.members.iter().position(|x| *x == m.step.from).unwrap();
        p.members[at] = m.step.to;
    }
    s.operations.get_mut(&op).unwrap().phase = OpPhase::Done;
    let why = refused(&mut s, CpCommand::AdvanceShrinkPlan { id: "p".into() });
    assert!(why.contains("vote has yet to move"), "{why}");
    assert_eq!(s.shrink_plans["p"].state, PlanState::Armed);
    s.cp_members.retain(|m| *m != n);
    ok(&mut s, CpCommand::AdvanceShrinkPlan { id: "p".into() });
    assert_eq!(s.shrink_plans["p"].state, PlanState::Completed);
    assert!(!s.nodes.contains_key(&n) && s.removed_nodes.contains(&n));

    // Cancelled before anything moved: the node is Active again.
    let mut s = cluster();
    draft(&mut s, "p", Some(3), 4);
    let n = s.shrink_plans["p"].remove_nodes[0];
    let op = arm(&mut s, "p");
    ok(&mut s, CpCommand::CancelShrinkPlan { id: "p".into() });
    s.operations.get_mut(&op).unwrap().phase = OpPhase::Cancelled;
    ok(&mut s, CpCommand::AdvanceShrinkPlan { id: "p".into() });
    assert_eq!(s.shrink_plans["p"].state, PlanState::RolledBack);
    assert_eq!(s.nodes[&n].state, NodeState::Active);
}

#[test]
fn a_second_plan_is_not_armed_while_one_is() {
    let mut s = cluster();
    draft(&mut s, "q", None, 2);
    arm(&mut s, "q");
    draft(&mut s, "r", None, 3);
    let why =
        refused(&mut s, CpCommand::ArmShrinkPlan { id: "r".into(), budget: Budget::default(), gate_timeout_ms: 1000 });
    assert!(why.contains("armed") || why.contains("running"), "{why}");
    assert!(s.placements.contains_key(&PrgId::new("t", 3)));
}
