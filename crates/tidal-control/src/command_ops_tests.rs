use std::collections::BTreeMap;

use tidal_core::operation::{Budget, OpPhase, Operation, StepKind, StepState};
use tidal_core::planner::scale::{plan_scale, ScaleRequest, Sizes};
use tidal_core::replica_move::ReplicaPhase;
use tidal_core::slot_move::MovePhase;
use tidal_core::{ClusterState, NodeInfo, NodeState, PrgId};

use crate::command::{apply, CpCommand, CpReply};

pub(crate) fn node(id: u64) -> NodeInfo {
    NodeInfo {
        id,
        peer_addr: format!("127.0.0.1:{}", 7000 + id),
        client_addr: String::new(),
        http_addr: String::new(),
        zone: String::new(),
        state: NodeState::Active,
    }
}

/// Three nodes with a tenant of 16 slots in 2 PRGs, then nodes 4 and 5.
fn cluster() -> ClusterState {
    let mut s = ClusterState::default();
    for id in 1..=3 {
        apply(&mut s, 0, &CpCommand::RegisterNode(node(id)));
    }
    apply(&mut s, 0, &CpCommand::CreateTenant { name: "t".into(), slots: 16, prgs: 2 });
    for id in 4..=5 {
        apply(&mut s, 0, &CpCommand::RegisterNode(node(id)));
    }
    s
}

fn operation(s: &ClusterState, prgs: u32) -> Operation {
    let req = ScaleRequest { add_nodes: Vec::new(), prgs: BTreeMap::from([("t".to_string(), prgs)]) };
    let plan = plan_scale(s, &req, &Sizes::default()).unwrap();
    Operation::new("scale_out", plan, Budget { per_node: 1, cluster: 4 }, 1000, 1000)
}

pub(crate) fn ok(s: &mut ClusterState, cmd: CpCommand) -> CpReply {
    let r = apply(s, 10, &cmd);
    assert!(!matches!(r, CpReply::Refused(_)), "{cmd:?}: {r:?}");
    r
}

pub(crate) fn refused(s: &mut ClusterState, cmd: CpCommand) -> String {
    let before = s.clone();
    match apply(s, 10, &cmd) {
        CpReply::Refused(why) => {
            assert_eq!(*s, before, "a refused {cmd:?} changed the state");
            why
        }
        r => panic!("{cmd:?} was not refused: {r:?}"),
    }
}

fn start(s: &mut ClusterState, op: Operation) -> u64 {
    match ok(s, CpCommand::StartOperation(Box::new(op))) {
        CpReply::OperationStarted { id } => id,
        r => panic!("{r:?}"),
    }
}

fn to(s: &mut ClusterState, id: u64, phase: OpPhase) {
    let expect = s.operations[&id].phase;
    ok(s, CpCommand::OperationPhase { id, expect, phase, note: None, error: None });
}

/// An operation doubling the PRGs, with its new PRGs created.
fn with_new_prgs(s: &mut ClusterState) -> u64 {
    let op = operation(s, 4);
    let id = start(s, op);
    to(s, id, OpPhase::AddNodes);
    to(s, id, OpPhase::CreatePrgs);
    ok(s, CpCommand::OperationCreatePrgs { id });
    id
}

/// Finish move `m` as done (its slots owned by the target).
fn finish_slot_move(s: &mut ClusterState, m: u64) {
    for (expect, phase) in [(MovePhase::Copying, MovePhase::CatchUp), (MovePhase::CatchUp, MovePhase::Fenced)] {
        ok(s, CpCommand::UpdateMove { id: m, expect, phase, progress: None, error: None });
    }
    ok(s, CpCommand::CommitMove { id: m });
    ok(
        s,
        CpCommand::UpdateMove {
            id: m,
            expect: MovePhase::Committed,
            phase: MovePhase::Done,
            progress: None,
            error: None,
        },
    );
}

#[test]
fn an_operation_starts_only_from_its_plans_version_and_alone() {
    let mut s = cluster();
    let op = operation(&s, 4);
    let mut stale = op.clone();
    stale.plan.version -= 1;
    assert!(refused(&mut s, CpCommand::StartOperation(Box::new(stale))).contains("changed since the plan"));
    let id = start(&mut s, op.clone());
    assert_eq!(s.operations[&id].phase, OpPhase::Preflight);
    let mut second = operation(&s, 4);
    second.plan.version = s.version;
    assert!(refused(&mut s, CpCommand::StartOperation(Box::new(second))).contains("is running"));
    // Phases go one at a time.
    assert!(refused(
        &mut s,
        CpCommand::OperationPhase {
            id,
            expect: OpPhase::Preflight,
            phase: OpPhase::CreatePrgs,
            note: None,
            error: None
        }
    )
    .contains("cannot go"));
}

#[test]
fn a_whole_operation_creates_prgs_moves_slots_within_the_budget_and_ends_done() {
    let mut s = cluster();
    let op = operation(&s, 4);
    assert_eq!(op.plan.new_prgs.len(), 2);
    let id = start(&mut s, op);
    to(&mut s, id, OpPhase::AddNodes);
    to(&mut s, id, OpPhase::CreatePrgs);
    let epoch = s.routing_epoch;
    ok(&mut s, CpCommand::OperationCreatePrgs { id });
    assert_eq!(s.routing_epoch, epoch + 1);
    assert!(s.placements.contains_key(&PrgId::new("t", 2)) && s.placements.contains_key(&PrgId::new("t", 3)));
    refused(&mut s, CpCommand::OperationCreatePrgs { id });
    to(&mut s, id, OpPhase::MoveSlots);
    let steps: Vec<usize> = s.operations[&id]
        .steps
        .iter()
        .enumerate()
        .filter(|(_, st)| matches!(st.kind, StepKind::Slots(_)))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(steps.len(), 2);
    ok(&mut s, CpCommand::OperationStartStep { id, step: steps[0] });
    // The old PRGs all sit on nodes 1-3: one move per node at a time.
    assert!(refused(&mut s, CpCommand::OperationStartStep { id, step: steps[1] }).contains("budget"));
    refused(&mut s, CpCommand::OperationStepEnded { id, step: steps[0] });
    let m = *s.operations[&id].steps[steps[0]].moves.last().unwrap();
    finish_slot_move(&mut s, m);
    ok(&mut s, CpCommand::OperationStepEnded { id, step: steps[0] });
    assert_eq!(s.operations[&id].steps[steps[0]].state, StepState::Done);
    assert!(s.operations[&id].past_no_return(&s));
    ok(&mut s, CpCommand::OperationStartStep { id, step: steps[1] });
    let m = *s.operations[&id].steps[steps[1]].moves.last().unwrap();
    finish_slot_move(&mut s, m);
    ok(&mut s, CpCommand::OperationStepEnded { id, step: steps[1] });
    // Every slot move done; then the replica moves, each to its end.
    to(&mut s, id, OpPhase::MoveReplicas);
    let replica: Vec<usize> = (0..s.operations[&id].steps.len()).filter(|i| !steps.contains(i)).collect();
    for step in replica {
        assert!(refused(
            &mut s,
            CpCommand::OperationPhase {
                id,
                expect: OpPhase::MoveReplicas,
                phase: OpPhase::Leaders,
                note: None,
                error: None
            }
        )
        .contains("pending"));
        ok(&mut s, CpCommand::OperationStartStep { id, step });
        let m = *s.operations[&id].steps[step].moves.last().unwrap();
        ok(
            &mut s,
            CpCommand::UpdateReplicaMove {
                id: m,
                expect: ReplicaPhase::AddingLearner,
                phase: ReplicaPhase::Promoting,
                lag: None,
                error: None,
            },
        );
        ok(&mut s, CpCommand::CommitReplicaMove { id: m });
        ok(&mut s, CpCommand::OperationStepEnded { id, step });
    }
    to(&mut s, id, OpPhase::Leaders);
    to(&mut s, id, OpPhase::Validate);
    to(&mut s, id, OpPhase::Done);
    let op = &s.operations[&id];
    assert!(op.phase.is_finished() && op.finished_ms.is_some());
    let owners: std::collections::BTreeSet<u32> = s.tenants["t"].owner.iter().copied().collect();
    assert_eq!(owners.len(), 4, "every PRG owns slots: {:?}", s.tenants["t"].owner);
}

#[test]
fn a_rolled_back_move_is_tried_again_then_fails_its_step() {
    let mut s = cluster();
    let id = with_new_prgs(&mut s);
    to(&mut s, id, OpPhase::MoveSlots);
    for attempt in 1..=tidal_core::operation::STEP_ATTEMPTS {
        ok(&mut s, CpCommand::OperationStartStep { id, step: 0 });
        let m = *s.operations[&id].steps[0].moves.last().unwrap();
        ok(
            &mut s,
            CpCommand::UpdateMove {
                id: m,
                expect: MovePhase::Copying,
                phase: MovePhase::RollingBack,
                progress: None,
                error: Some("fence over budget".into()),
            },
        );
        ok(
            &mut s,
            CpCommand::UpdateMove {
                id: m,
                expect: MovePhase::RollingBack,
                phase: MovePhase::RolledBack,
                progress: None,
                error: None,
            },
        );
        ok(&mut s, CpCommand::OperationStepEnded { id, step: 0 });
        let want = if attempt < tidal_core::operation::STEP_ATTEMPTS { StepState::Pending } else { StepState::Failed };
        assert_eq!(s.operations[&id].steps[0].state, want, "attempt {attempt}");
    }
    assert_eq!(s.operations[&id].steps[0].moves.len(), tidal_core::operation::STEP_ATTEMPTS);
    refused(&mut s, CpCommand::OperationStartStep { id, step: 0 });
}

#[test]
fn rolling_back_before_a_slot_moved_removes_the_new_prgs_for_good() {
    let mut s = cluster();
    let op = operation(&s, 4);
    let id = start(&mut s, op);
    to(&mut s, id, OpPhase::AddNodes);
    to(&mut s, id, OpPhase::CreatePrgs);
    refused(&mut s, CpCommand::OperationRemovePrgs { id });
    ok(&mut s, CpCommand::OperationCreatePrgs { id });
    ok(&mut s, CpCommand::CancelOperation { id });
    refused(&mut s, CpCommand::CancelOperation { id });
    refused(&mut s, CpCommand::OperationStartStep { id, step: 0 });
    to(&mut s, id, OpPhase::RollingBack);
    let epoch = s.routing_epoch;
    ok(&mut s, CpCommand::OperationRemovePrgs { id });
    assert_eq!(s.routing_epoch, epoch + 1);
    assert_eq!(s.prgs_of("t").len(), 2);
    assert!(s.retired_prgs.contains(&PrgId::new("t", 2)));
    to(&mut s, id, OpPhase::RolledBack);
    // The retired ids are not given out again.
    assert_eq!(s.next_prg_index("t"), 4);
    let again = operation(&s, 4);
    assert_eq!(again.plan.new_prgs[0].0, PrgId::new("t", 4));
    start(&mut s, again);
}

#[test]
fn prgs_that_own_slots_are_not_removed() {
    let mut s = cluster();
    let id = with_new_prgs(&mut s);
    to(&mut s, id, OpPhase::MoveSlots);
    ok(&mut s, CpCommand::OperationStartStep { id, step: 0 });
    let m = *s.operations[&id].steps[0].moves.last().unwrap();
    finish_slot_move(&mut s, m);
    ok(&mut s, CpCommand::OperationStepEnded { id, step: 0 });
    to(&mut s, id, OpPhase::RollingBack);
    assert!(refused(&mut s, CpCommand::OperationRemovePrgs { id }).contains("owns slots"));
    to(&mut s, id, OpPhase::Failed);
    assert_eq!(s.operations[&id].steps[1].state, StepState::Skipped);
}

mod random {
    //! Random sequences of every operation command, and of the moves its
    //! steps start going forward or back, against the invariants an
    //! operation keeps whatever order they come in.

    use proptest::prelude::*;
    use tidal_core::operation::moves_in_flight;

    use super::*;

    #[derive(Clone, Debug)]
    enum Act {
        Phase(usize),
        Create,
        Remove,
        Start(usize),
        Ended(usize),
        Forward(usize),
        Back(usize),
        Cancel,
    }

    fn act() -> impl Strategy<Value = Act> {
        prop_oneof![
            (0..12usize).prop_map(Act::Phase),
            Just(Act::Create),
            Just(Act::Remove),
            (0..6usize).prop_map(Act::Start),
            (0..6usize).prop_map(Act::Ended),
            (0..6usize).prop_map(Act::Forward),
            (0..6usize).prop_map(Act::Back),
            Just(Act::Cancel),
        ]
    }

    /// The command that takes the latest move of `step` one phase forward
    /// (or back), if it has one.
    fn move_cmd(s: &ClusterState, id: u64, step: usize, forward: bool) -> Option<CpCommand> {
        let m = *s.operations[&id].steps.get(step)?.moves.last()?;
        if let Some(sm) = s.moves.get(&m) {
            let next = |phase| CpCommand::UpdateMove { id: m, expect: sm.phase, phase, progress: None, error: None };
            return Some(match (sm.phase, forward) {
                (MovePhase::Copying, true) => next(MovePhase::CatchUp),
                (MovePhase::CatchUp, true) => next(MovePhase::Fenced),
                (MovePhase::Fenced, true) => CpCommand::CommitMove { id: m },
                (MovePhase::Committed, true) => next(MovePhase::Done),
                (MovePhase::RollingBack, _) => next(MovePhase::RolledBack),
                (_, false) => next(MovePhase::RollingBack),
                _ => return None,
            });
        }
        let rm = s.replica_moves.get(&m)?;
        let next = |phase| CpCommand::UpdateReplicaMove { id: m, expect: rm.phase, phase, lag: None, error: None };
        Some(match (rm.phase, forward) {
            (ReplicaPhase::AddingLearner, true) => next(ReplicaPhase::Promoting),
            (ReplicaPhase::Promoting, true) => CpCommand::CommitReplicaMove { id: m },
            (ReplicaPhase::RollingBack, _) => next(ReplicaPhase::RolledBack),
            (_, false) => next(ReplicaPhase::RollingBack),
            _ => return None,
        })
    }

    fn check(s: &ClusterState, id: u64) -> Result<(), TestCaseError> {
        let op = &s.operations[&id];
        prop_assert!(s.operations.values().filter(|o| !o.phase.is_finished()).count() <= 1);
        // Every move in flight is the operation's: the budget holds for all.
        let (per_node, total) = moves_in_flight(s);
        prop_assert!(total <= op.budget.cluster, "{total} moves in flight");
        prop_assert!(per_node.values().all(|n| *n <= op.budget.per_node), "{per_node:?}");
        if op.phase == OpPhase::Done {
            prop_assert!(op.steps.iter().all(|st| st.state == StepState::Done));
        }
        for (prg, _) in &op.plan.new_prgs {
            prop_assert_eq!(s.placements.contains_key(prg), op.prgs_created);
            prop_assert!(!(s.retired_prgs.contains(prg) && op.prgs_created));
        }
        for st in &op.steps {
            prop_assert!(st.moves.len() <= tidal_core::operation::STEP_ATTEMPTS);
            if st.state == StepState::Done {
                let m = st.moves.last().unwrap();
                let done = s.moves.get(m).is_some_and(|m| m.phase == MovePhase::Done)
                    || s.replica_moves.get(m).is_some_and(|m| m.phase == ReplicaPhase::Done);
                prop_assert!(done, "a step is done before its move");
            }
        }
        // Slots stay owned by exactly the PRGs that exist.
        for owner in &s.tenants["t"].owner {
            prop_assert!(s.placements.contains_key(&PrgId::new("t", *owner)));
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
        #[test]
        fn every_order_of_commands_keeps_the_invariants(acts in proptest::collection::vec(act(), 1..120)) {
            let mut s = cluster();
            let op = operation(&s, 4);
            let id = start(&mut s, op);
            for a in acts {
                let cmd = match a {
                    Act::Phase(p) => {
                        let expect = s.operations[&id].phase;
                        Some(CpCommand::OperationPhase { id, expect, phase: OpPhase::ALL[p], note: None, error: None })
                    }
                    Act::Create => Some(CpCommand::OperationCreatePrgs { id }),
                    Act::Remove => Some(CpCommand::OperationRemovePrgs { id }),
                    Act::Start(i) => Some(CpCommand::OperationStartStep { id, step: i }),
                    Act::Ended(i) => Some(CpCommand::OperationStepEnded { id, step: i }),
                    Act::Forward(i) => move_cmd(&s, id, i, true),
                    Act::Back(i) => move_cmd(&s, id, i, false),
                    Act::Cancel => Some(CpCommand::CancelOperation { id }),
                };
                let Some(cmd) = cmd else { continue };
                let before = s.clone();
                if let CpReply::Refused(_) = apply(&mut s, 10, &cmd) {
                    prop_assert_eq!(&s, &before, "a refused {:?} changed the state", cmd);
                }
                check(&s, id)?;
            }
        }
    }
}
