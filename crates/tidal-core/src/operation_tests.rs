use super::*;
use crate::cluster::{NodeInfo, NodeState, Placement, Tenant};
use crate::ids::PrgId;
use crate::planner::scale::{PlannedReplicaMove, PlannedSlotMove};
use crate::planner::ReplicaStep;
use crate::replica_move::{ReplicaMove, ReplicaPhase};

fn state() -> ClusterState {
    let mut s = ClusterState::default();
    for id in 1..=6 {
        let info = NodeInfo {
            id,
            peer_addr: String::new(),
            client_addr: String::new(),
            http_addr: String::new(),
            zone: String::new(),
            state: NodeState::Active,
        };
        s.nodes.insert(id, info);
    }
    s.tenants.insert("t".into(), Tenant::new("t", 8, 2));
    for (i, m) in [(0, vec![1, 2, 3]), (1, vec![4, 5, 6]), (2, vec![1, 2, 3]), (3, vec![4, 5, 6])] {
        s.placements.insert(PrgId::new("t", i), Placement::new(PrgId::new("t", i), m, 1, Vec::new()));
    }
    s
}

fn plan() -> ScalePlan {
    let slot = |from, to| PlannedSlotMove {
        tenant: "t".into(),
        from: PrgId::new("t", from),
        to: PrgId::new("t", to),
        slots: vec![from],
        bytes: 1,
    };
    ScalePlan {
        version: 1,
        add_nodes: Vec::new(),
        new_prgs: Vec::new(),
        replica_moves: vec![PlannedReplicaMove {
            step: ReplicaStep { prg: PrgId::new("t", 0), from: 3, to: 4 },
            bytes: 1,
        }],
        slot_moves: vec![slot(0, 2), slot(1, 3), slot(0, 3)],
        leader_changes: Vec::new(),
        total_bytes: 4,
        epoch_bumps: 4,
        eta_ms: 0,
    }
}

#[test]
fn phases_go_forward_one_at_a_time_and_stop_only_by_rolling_back() {
    use OpPhase::*;
    assert!(Preflight.may_become(AddNodes));
    assert!(!Preflight.may_become(CreatePrgs));
    assert!(Validate.may_become(Done));
    assert!(MoveSlots.may_become(RollingBack));
    assert!(!MoveSlots.may_become(Failed));
    assert!(RollingBack.may_become(Failed) && RollingBack.may_become(RolledBack));
    assert!(!RollingBack.may_become(RollingBack));
    for end in [Done, RolledBack, Cancelled, Failed] {
        assert!(end.is_finished());
        assert!(OpPhase::ALL[..8].iter().all(|p| !end.may_become(*p)) && !end.may_become(RollingBack));
    }
}

#[test]
fn steps_follow_the_plan_slots_first() {
    let op = Operation::new("scale_out", plan(), Budget::default(), 1000, 1000);
    let kinds: Vec<StepKind> = op.steps.iter().map(|s| s.kind).collect();
    assert_eq!(kinds, vec![StepKind::Slots(0), StepKind::Slots(1), StepKind::Slots(2), StepKind::Replica(0)]);
    assert_eq!(op.steps[3].phase(), OpPhase::MoveReplicas);
}

#[test]
fn the_budget_limits_moves_per_node_and_in_all() {
    let s = state();
    let mut op = Operation::new("scale_out", plan(), Budget { per_node: 1, cluster: 4 }, 1000, 1000);
    op.phase = OpPhase::MoveSlots;
    // Steps 0 (nodes 1-3) and 1 (nodes 4-6) share no node; step 2 touches both.
    assert_eq!(op.startable(&s), vec![0, 1]);
    op.budget = Budget { per_node: 2, cluster: 4 };
    assert_eq!(op.startable(&s), vec![0, 1, 2]);
    op.budget = Budget { per_node: 2, cluster: 1 };
    assert_eq!(op.startable(&s), vec![0]);
    // A replica move in flight on PRG 0 (nodes 1-3, to 4) counts.
    let mut s = s;
    s.replica_moves.insert(9, ReplicaMove::new(9, PrgId::new("t", 0), 3, 4, 0));
    op.budget = Budget { per_node: 1, cluster: 4 };
    assert_eq!(op.startable(&s), Vec::<usize>::new());
    op.budget = Budget { per_node: 2, cluster: 2 };
    assert_eq!(op.startable(&s), vec![0]);
    // Only the current phase's steps start (once PRG 0's move is over:
    // see below).
    op.phase = OpPhase::MoveReplicas;
    op.budget = Budget::default();
    assert_eq!(op.startable(&s), Vec::<usize>::new());
    s.replica_moves.get_mut(&9).unwrap().phase = ReplicaPhase::Done;
    assert_eq!(op.startable(&s), vec![3]);
}

#[test]
fn a_prg_moves_one_replica_at_a_time() {
    let s = state();
    let mut p = plan();
    // Two replicas of PRG 0 leave (nodes 3 and 2), and one of PRG 1.
    p.replica_moves = vec![
        PlannedReplicaMove { step: ReplicaStep { prg: PrgId::new("t", 0), from: 3, to: 4 }, bytes: 1 },
        PlannedReplicaMove { step: ReplicaStep { prg: PrgId::new("t", 0), from: 2, to: 5 }, bytes: 1 },
        PlannedReplicaMove { step: ReplicaStep { prg: PrgId::new("t", 1), from: 4, to: 1 }, bytes: 1 },
    ];
    let mut op = Operation::new("scale_in", p, Budget { per_node: 8, cluster: 8 }, 1000, 1000);
    op.phase = OpPhase::MoveReplicas;
    // Steps 3-5 are the replica moves: PRG 0's second waits for its first.
    assert_eq!(op.startable(&s), vec![3, 5]);
    op.steps[3].state = StepState::Running;
    let mut s = s;
    s.replica_moves.insert(9, ReplicaMove::new(9, PrgId::new("t", 0), 3, 4, 0));
    assert_eq!(op.startable(&s), vec![5]);
    // Once it is over, the second starts.
    s.replica_moves.get_mut(&9).unwrap().phase = ReplicaPhase::Done;
    op.steps[3].state = StepState::Done;
    assert_eq!(op.startable(&s), vec![4, 5]);
}

#[test]
fn entering_an_end_skips_what_did_not_start_and_times_each_phase() {
    let mut op = Operation::new("scale_out", plan(), Budget::default(), 1000, 1000);
    op.enter(100, OpPhase::AddNodes);
    op.steps[0].state = StepState::Done;
    op.enter(350, OpPhase::RollingBack);
    op.enter(400, OpPhase::Failed);
    assert_eq!(op.phase_times, vec![(OpPhase::Preflight, 100), (OpPhase::AddNodes, 250), (OpPhase::RollingBack, 50)]);
    assert_eq!(op.finished_ms, Some(400));
    let states: Vec<StepState> = op.steps.iter().map(|s| s.state).collect();
    assert_eq!(states, vec![StepState::Done, StepState::Skipped, StepState::Skipped, StepState::Skipped]);
}

#[test]
fn events_are_kept_within_their_limit() {
    let mut op = Operation::new("scale_out", plan(), Budget::default(), 1000, 1000);
    for i in 0..(MAX_EVENTS as u64 + 50) {
        op.note(i, format!("e{i}"));
    }
    assert_eq!(op.events.len(), MAX_EVENTS);
    assert_eq!(op.events[0].text, "e0");
    assert_eq!(op.events.last().unwrap().text, format!("e{}", MAX_EVENTS + 49));
}
