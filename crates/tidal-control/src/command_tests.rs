use super::*;
use tidal_core::NodeState;

fn node(id: NodeId) -> NodeInfo {
    NodeInfo {
        id,
        peer_addr: format!("127.0.0.1:{}", 7000 + id),
        client_addr: format!("127.0.0.1:{}", 6000 + id),
        http_addr: format!("127.0.0.1:{}", 8000 + id),
        zone: "local".into(),
        state: NodeState::Active,
    }
}

fn with_nodes(n: u64) -> ClusterState {
    let mut s = ClusterState::default();
    for i in 1..=n {
        assert!(matches!(apply(&mut s, 0, &CpCommand::RegisterNode(node(i))), CpReply::Ok { .. }));
    }
    s
}

#[test]
fn creating_a_tenant_places_prgs_and_bumps_the_epoch() {
    let mut s = with_nodes(3);
    let r = apply(&mut s, 0, &CpCommand::CreateTenant { name: "default".into(), slots: 1024, prgs: 4 });
    assert_eq!(r, CpReply::Ok { version: 4, routing_epoch: 1 });
    assert_eq!(s.prgs_of("default").len(), 4);
    assert!(s.placements.values().all(|p| p.epoch == 1 && p.members.len() == 3));
    // Same shape again: accepted, no new epoch.
    let r = apply(&mut s, 0, &CpCommand::CreateTenant { name: "default".into(), slots: 1024, prgs: 4 });
    assert_eq!(r, CpReply::Ok { version: 5, routing_epoch: 1 });
}

#[test]
fn invalid_tenants_are_refused_and_change_nothing() {
    let mut s = with_nodes(3);
    let before = s.clone();
    for (name, slots, prgs) in [("bad name", 8, 1), ("t", 0, 1), ("t", 8, 0), ("t", 8, 9), ("t", MAX_SLOTS + 1, 1)] {
        let r = apply(&mut s, 0, &CpCommand::CreateTenant { name: name.into(), slots, prgs });
        assert!(matches!(r, CpReply::Refused(_)), "{name} {slots} {prgs}");
        assert_eq!(s, before);
    }
    let mut two = with_nodes(2);
    let before = two.clone();
    assert!(matches!(
        apply(&mut two, 0, &CpCommand::CreateTenant { name: "t".into(), slots: 8, prgs: 1 }),
        CpReply::Refused(_)
    ));
    assert_eq!(two, before);
}

#[test]
fn a_different_shape_for_an_existing_tenant_is_refused() {
    let mut s = with_nodes(3);
    apply(&mut s, 0, &CpCommand::CreateTenant { name: "t".into(), slots: 64, prgs: 2 });
    let before = s.clone();
    assert!(matches!(
        apply(&mut s, 0, &CpCommand::CreateTenant { name: "t".into(), slots: 64, prgs: 3 }),
        CpReply::Refused(_)
    ));
    assert_eq!(s, before);
}

#[test]
fn leader_hints_must_name_a_member() {
    let mut s = with_nodes(4);
    apply(&mut s, 0, &CpCommand::CreateTenant { name: "t".into(), slots: 8, prgs: 1 });
    let prg = PrgId::new("t", 0);
    let outsider = (1..=4).find(|i| !s.placements[&prg].members.contains(i)).unwrap();
    apply(&mut s, 0, &CpCommand::LeaderHint { prg: prg.clone(), leader: outsider });
    assert_eq!(s.placements[&prg].leader_hint, None);
    let member = s.placements[&prg].members[1];
    apply(&mut s, 0, &CpCommand::LeaderHint { prg: prg.clone(), leader: member });
    assert_eq!(s.placements[&prg].leader_hint, Some(member));
}

fn refused(r: CpReply) -> String {
    match r {
        CpReply::Refused(why) => why,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// A cluster of `n` nodes with tenant `t` (16 slots, 2 PRGs) and one added PRG `t:2`.
fn with_three_prgs(n: u64) -> ClusterState {
    let mut s = with_nodes(n);
    apply(&mut s, 0, &CpCommand::CreateTenant { name: "t".into(), slots: 16, prgs: 2 });
    let r = apply(&mut s, 0, &CpCommand::AddPrgs { tenant: "t".into(), count: 1, members: None, expect_epoch: None });
    assert_eq!(r, CpReply::PrgsAdded { prgs: vec![PrgId::new("t", 2)], routing_epoch: 2 });
    s
}

#[test]
fn added_prgs_own_nothing_and_follow_the_member_rules() {
    let mut s = with_three_prgs(4);
    let p = &s.placements[&PrgId::new("t", 2)];
    assert!(p.genesis.is_empty());
    assert_eq!(s.tenants["t"].slots_of(2), Vec::<u32>::new());
    let before = s.clone();
    let add = |count, members: Option<Vec<NodeId>>, expect_epoch| CpCommand::AddPrgs {
        tenant: "t".into(),
        count,
        members,
        expect_epoch,
    };
    for cmd in [
        add(0, None, None),
        add(1, Some(vec![1, 2]), None),
        add(1, Some(vec![1, 1, 2]), None),
        add(1, Some(vec![1, 2, 9]), None),
        add(1, None, Some(1)),
        CpCommand::AddPrgs { tenant: "nope".into(), count: 1, members: None, expect_epoch: None },
    ] {
        refused(apply(&mut s, 5, &cmd));
        assert_eq!(s, before, "{cmd:?}");
    }
    let r = apply(&mut s, 5, &add(2, Some(vec![4, 2, 3]), Some(2)));
    assert_eq!(r, CpReply::PrgsAdded { prgs: vec![PrgId::new("t", 3), PrgId::new("t", 4)], routing_epoch: 3 });
    assert_eq!(s.placements[&PrgId::new("t", 4)].members, vec![4, 2, 3]);
}

#[test]
fn a_slot_move_is_journaled_and_commits_with_an_epoch_bump() {
    let mut s = with_three_prgs(3);
    let start = CpCommand::StartMove { tenant: "t".into(), slots: vec![1, 0], from: None, to: PrgId::new("t", 2) };
    let CpReply::MoveStarted { id, .. } = apply(&mut s, 10, &start) else { panic!("not started") };
    let m = &s.moves[&id];
    assert_eq!((m.from, m.to, m.slots.clone(), m.phase), (0, 2, vec![0, 1], MovePhase::Copying));
    // The same slots cannot start moving twice.
    assert!(refused(apply(&mut s, 11, &start)).contains("already moving"));
    // Phase changes are conditioned on the phase expected, and must be legal.
    let update = |expect, phase| CpCommand::UpdateMove { id, expect, phase, progress: None, error: None };
    refused(apply(&mut s, 12, &update(MovePhase::CatchUp, MovePhase::Fenced)));
    refused(apply(&mut s, 12, &update(MovePhase::Copying, MovePhase::Fenced)));
    refused(apply(&mut s, 12, &update(MovePhase::Copying, MovePhase::Committed)));
    refused(apply(&mut s, 12, &CpCommand::CommitMove { id }));
    apply(&mut s, 13, &update(MovePhase::Copying, MovePhase::CatchUp));
    apply(&mut s, 14, &update(MovePhase::CatchUp, MovePhase::Fenced));
    assert_eq!(s.moves[&id].fenced_ms, Some(14));
    let epoch = s.routing_epoch;
    assert!(matches!(apply(&mut s, 20, &CpCommand::CommitMove { id }), CpReply::Ok { .. }));
    assert_eq!(s.routing_epoch, epoch + 1);
    assert_eq!(s.moves[&id].commit_epoch, Some(epoch + 1));
    assert_eq!(s.tenants["t"].owner[..2], [2, 2]);
    // Committed: cancel is refused, and it finishes.
    assert!(refused(apply(&mut s, 21, &CpCommand::CancelMove { id })).contains("committed"));
    // A step that keeps failing is noted on the move, which stays where it is.
    refused(apply(&mut s, 22, &update(MovePhase::Committed, MovePhase::Committed)));
    let note = CpCommand::UpdateMove {
        id,
        expect: MovePhase::Committed,
        phase: MovePhase::Committed,
        progress: None,
        error: Some("5 failures".into()),
    };
    apply(&mut s, 22, &note);
    assert_eq!((s.moves[&id].phase, s.moves[&id].error.as_deref()), (MovePhase::Committed, Some("5 failures")));
    assert_eq!(s.moves[&id].fenced_ms, Some(14));
    apply(&mut s, 30, &update(MovePhase::Committed, MovePhase::Done));
    assert_eq!(s.moves[&id].fence_window_ms(), Some(16));
}

#[test]
fn a_cancelled_move_is_flagged_and_rolls_back() {
    let mut s = with_three_prgs(3);
    let start = CpCommand::StartMove { tenant: "t".into(), slots: vec![3], from: None, to: PrgId::new("t", 2) };
    let CpReply::MoveStarted { id, .. } = apply(&mut s, 1, &start) else { panic!() };
    apply(&mut s, 2, &CpCommand::CancelMove { id });
    assert!(s.moves[&id].cancel_requested);
    let cmd = |expect, phase| CpCommand::UpdateMove { id, expect, phase, progress: None, error: Some("x".into()) };
    apply(&mut s, 3, &cmd(MovePhase::Copying, MovePhase::RollingBack));
    apply(&mut s, 4, &cmd(MovePhase::RollingBack, MovePhase::RolledBack));
    assert_eq!(s.tenants["t"].owner[3], 0, "a rolled-back move changes no owner");
    assert!(refused(apply(&mut s, 5, &CpCommand::CancelMove { id })).contains("rolled-back"));
    refused(apply(&mut s, 5, &CpCommand::CancelMove { id: 99 }));
}

#[test]
fn a_replica_move_adds_a_learner_then_replaces_the_member() {
    let mut s = with_three_prgs(4);
    let prg = PrgId::new("t", 0);
    let from = s.placements[&prg].members[0];
    let to = (1..=4).find(|n| !s.placements[&prg].members.contains(n)).unwrap();
    let start = CpCommand::StartReplicaMove { prg: prg.clone(), from, to };
    let CpReply::MoveStarted { id, .. } = apply(&mut s, 1, &start) else { panic!() };
    assert_eq!(s.placements[&prg].learners, vec![to]);
    assert!(s.placements[&prg].hosted_on(to));
    // One move at a time per PRG, and no slot move of a PRG moving a replica.
    assert!(refused(apply(&mut s, 2, &start)).contains("already moving"));
    let slots = CpCommand::StartMove { tenant: "t".into(), slots: vec![0], from: None, to: PrgId::new("t", 2) };
    assert!(refused(apply(&mut s, 2, &slots)).contains("replica"));
    refused(apply(&mut s, 2, &CpCommand::CommitReplicaMove { id }));
    // The learner's progress is recorded while it catches up, and only then.
    let progress = |expect, bytes| CpCommand::ReplicaProgress { id, expect, lag: 7, bytes };
    apply(&mut s, 3, &progress(ReplicaPhase::AddingLearner, 4096));
    assert_eq!((s.replica_moves[&id].lag, s.replica_moves[&id].bytes), (Some(7), 4096));
    assert!(refused(apply(&mut s, 3, &progress(ReplicaPhase::Promoting, 1))).contains("not promoting"));
    assert_eq!(s.replica_moves[&id].bytes, 4096);
    let update = |expect, phase| CpCommand::UpdateReplicaMove { id, expect, phase, lag: Some(0), error: None };
    apply(&mut s, 3, &update(ReplicaPhase::AddingLearner, ReplicaPhase::Promoting));
    refused(apply(&mut s, 4, &CpCommand::CancelMove { id }));
    let epoch = s.routing_epoch;
    apply(&mut s, 5, &CpCommand::CommitReplicaMove { id });
    let p = &s.placements[&prg];
    assert!(p.members.contains(&to) && !p.members.contains(&from) && p.learners.is_empty(), "{p:?}");
    assert_eq!(s.routing_epoch, epoch + 1);
    assert_eq!(s.replica_moves[&id].phase, ReplicaPhase::Done);
}

#[test]
fn a_rolled_back_replica_move_forgets_its_learner() {
    let mut s = with_three_prgs(4);
    let prg = PrgId::new("t", 1);
    let to = (1..=4).find(|n| !s.placements[&prg].members.contains(n)).unwrap();
    let from = s.placements[&prg].members[1];
    let CpReply::MoveStarted { id, .. } = apply(&mut s, 1, &CpCommand::StartReplicaMove { prg: prg.clone(), from, to })
    else {
        panic!()
    };
    let members = s.placements[&prg].members.clone();
    let update = |expect, phase| CpCommand::UpdateReplicaMove { id, expect, phase, lag: None, error: None };
    apply(&mut s, 2, &update(ReplicaPhase::AddingLearner, ReplicaPhase::RollingBack));
    apply(&mut s, 3, &update(ReplicaPhase::RollingBack, ReplicaPhase::RolledBack));
    assert!(s.placements[&prg].learners.is_empty());
    assert_eq!(s.placements[&prg].members, members);
}

#[test]
fn a_draining_node_stays_draining_when_it_registers_again() {
    let mut s = with_nodes(3);
    s.nodes.get_mut(&2).unwrap().state = NodeState::Draining;
    apply(&mut s, 0, &CpCommand::RegisterNode(node(2)));
    assert_eq!(s.nodes[&2].state, NodeState::Draining);
}

#[test]
fn a_second_data_directory_cannot_claim_a_registered_node_id() {
    let mut s = with_nodes(2);
    let reg = |instance, replace| CpCommand::Register(Registration { info: node(3), instance, replace });
    // An id registered before instances were recorded takes the first one.
    apply(&mut s, 0, &reg(0xA, false));
    assert_eq!(s.instances[&3], 0xA);
    // The same data directory again (a restart, a new address): accepted.
    let mut moved = node(3);
    moved.peer_addr = "127.0.0.1:9999".into();
    let again = CpCommand::Register(Registration { info: moved.clone(), instance: 0xA, replace: false });
    assert!(matches!(apply(&mut s, 0, &again), CpReply::Ok { .. }));
    assert_eq!(s.nodes[&3].peer_addr, "127.0.0.1:9999");
    // Another data directory with the same id: refused, nothing changes.
    let before = s.clone();
    let why = refused(apply(&mut s, 0, &reg(0xB, false)));
    assert!(why.contains("already registered") && why.contains("--replace-node"), "{why}");
    assert_eq!(s, before);
    // Unless it replaces a node whose data is gone for good.
    assert!(matches!(apply(&mut s, 0, &reg(0xB, true)), CpReply::Ok { .. }));
    assert_eq!(s.instances[&3], 0xB);
    // A Draining node stays Draining through a registration.
    s.nodes.get_mut(&3).unwrap().state = NodeState::Draining;
    apply(&mut s, 0, &reg(0xB, false));
    assert_eq!(s.nodes[&3].state, NodeState::Draining);
}

#[test]
fn only_the_latest_finished_moves_are_kept() {
    let mut s = with_three_prgs(3);
    let to = PrgId::new("t", 2);
    let n = KEEP_FINISHED_MOVES as u64 + 3;
    for i in 0..n {
        // Each rolls back, so slot 0 stays where it was for the next.
        let start = CpCommand::StartMove { tenant: "t".into(), slots: vec![0], from: None, to: to.clone() };
        let CpReply::MoveStarted { id, .. } = apply(&mut s, i, &start) else { panic!("move {i} did not start") };
        let roll = |expect, phase| CpCommand::UpdateMove { id, expect, phase, progress: None, error: None };
        apply(&mut s, i, &roll(MovePhase::Copying, MovePhase::RollingBack));
        apply(&mut s, i, &roll(MovePhase::RollingBack, MovePhase::RolledBack));
    }
    assert_eq!(s.moves.len(), KEEP_FINISHED_MOVES);
    let oldest = *s.moves.keys().next().unwrap();
    assert_eq!(oldest, 4, "the three oldest are gone");
    // A move in flight is never pruned.
    let start = CpCommand::StartMove { tenant: "t".into(), slots: vec![1], from: None, to: to.clone() };
    let CpReply::MoveStarted { id, .. } = apply(&mut s, n, &start) else { panic!() };
    assert!(s.moves.contains_key(&id));
    assert_eq!(s.moves.values().filter(|m| m.phase.is_finished()).count(), KEEP_FINISHED_MOVES);
}

#[test]
fn an_autoscale_policy_is_validated_and_its_journal_bounded() {
    use tidal_core::autoscale::journal::{DecisionRecord, Outcome, JOURNAL_LEN};
    use tidal_core::autoscale::{recommend, Recommender, Signals};
    let mut s = with_nodes(3);
    let before = s.clone();
    let set = |p: &str| CpCommand::SetAutoscalePolicy { policy: Some(p.to_string()) };
    // min above max, and an unknown field: refused, naming the fields.
    for bad in [r#"{"minNodes":6,"maxNodes":4}"#, r#"{"minNodes":3,"maxNodes":5,"nodes":4}"#, "not json"] {
        match apply(&mut s, 0, &set(bad)) {
            CpReply::Refused(why) => assert!(why.starts_with("invalid autoscale policy"), "{why}"),
            other => panic!("{bad} was not refused: {other:?}"),
        }
    }
    let record = |at| {
        let policy = parse_policy(r#"{"minNodes":3,"maxNodes":5}"#).unwrap();
        let signals = Signals { now_ms: at, nodes: 3, ..Signals::default() };
        let decision = recommend(&policy, &signals, &mut Recommender::default());
        CpCommand::RecordDecision(Box::new(DecisionRecord { id: 0, signals, decision, outcome: Outcome::Steady }))
    };
    assert!(matches!(apply(&mut s, 0, &record(1)), CpReply::Refused(_)), "a decision needs a policy");
    assert_eq!(s.autoscale, before.autoscale);

    assert!(matches!(apply(&mut s, 7, &set(r#"{"minNodes":3,"maxNodes":5}"#)), CpReply::Ok { .. }));
    let policy = s.autoscale.policy().expect("stored");
    assert_eq!((policy.min_nodes, policy.max_nodes, policy.tolerance), (3, 5, 0.1));
    assert_eq!(s.autoscale.applied_ms, 7);
    for at in 0..(JOURNAL_LEN as u64 + 5) {
        assert!(matches!(apply(&mut s, at, &record(at)), CpReply::Ok { .. }));
    }
    assert_eq!(s.autoscale.decisions.len(), JOURNAL_LEN);
    assert_eq!(s.autoscale.decisions[0].id, 5);
    assert_eq!(s.autoscale.next_decision, JOURNAL_LEN as u64 + 5);
    // Turned off: no policy, the journal kept.
    assert!(matches!(apply(&mut s, 9, &CpCommand::SetAutoscalePolicy { policy: None }), CpReply::Ok { .. }));
    assert!(s.autoscale.policy.is_none() && !s.autoscale.decisions.is_empty());
}
