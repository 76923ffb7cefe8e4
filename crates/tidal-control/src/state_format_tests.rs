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
        s.placements.insert(prg.clone(), PlacementV0 { prg, members: vec![1, 2, 3], epoch: 1, leader_hint: Some(2) });
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
    assert!(decode_command(&encode_versioned(CP_FORMAT + 1, &new)).is_err());
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

#[test]
fn a_state_of_version_4_reads_without_shrink_plans() {
    let s = decode_state(&encode(&old_state())).unwrap();
    let v4 = StateV4 {
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
        operations: s.operations.clone(),
        next_op_id: 7,
        retired_prgs: [PrgId::new("default", 9)].into(),
    };
    let back = decode_state(&encode_versioned(4, &v4)).unwrap();
    assert_eq!((back.next_op_id, back.retired_prgs.len()), (7, 1));
    assert!(back.shrink_plans.is_empty());
    assert_eq!(decode_state(&encode_state(&back)).unwrap(), back);
}

#[test]
fn a_state_of_version_5_reads_without_drain_records() {
    let s = decode_state(&encode(&old_state())).unwrap();
    let v5 = StateV5 {
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
        operations: s.operations.clone(),
        next_op_id: 7,
        retired_prgs: [PrgId::new("default", 9)].into(),
        shrink_plans: BTreeMap::new(),
    };
    let back = decode_state(&encode_versioned(5, &v5)).unwrap();
    assert_eq!((back.next_op_id, back.retired_prgs.len()), (7, 1));
    assert!(back.drains.is_empty());
    let mut with = back.clone();
    let record = tidal_core::cluster::DrainRecord { kind: "heal".into(), operation: 3, started_ms: 9 };
    with.drains.insert(2, record);
    assert_eq!(decode_state(&encode_state(&with)).unwrap(), with);
}

#[test]
fn a_state_of_version_6_reads_without_control_plane_learners() {
    let mut s = decode_state(&encode(&old_state())).unwrap();
    s.removed_nodes.insert(9);
    let v6 = StateV6 {
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
        operations: s.operations.clone(),
        next_op_id: s.next_op_id,
        retired_prgs: s.retired_prgs.clone(),
        shrink_plans: s.shrink_plans.clone(),
        drains: s.drains.clone(),
        removed_nodes: s.removed_nodes.clone(),
    };
    let back = decode_state(&encode_versioned(6, &v6)).unwrap();
    assert_eq!(back, s);
    let mut with = back.clone();
    with.cp_learners = vec![4, 5];
    assert_eq!(decode_state(&encode_state(&with)).unwrap(), with);
}

#[test]
fn a_state_of_version_7_reads_without_autoscaling() {
    let mut s = decode_state(&encode(&old_state())).unwrap();
    s.cp_learners = vec![4];
    let v7 = StateV7 {
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
        operations: s.operations.clone(),
        next_op_id: s.next_op_id,
        retired_prgs: s.retired_prgs.clone(),
        shrink_plans: s.shrink_plans.clone(),
        drains: s.drains.clone(),
        removed_nodes: s.removed_nodes.clone(),
        cp_learners: s.cp_learners.clone(),
    };
    let back = decode_state(&encode_versioned(7, &v7)).unwrap();
    assert_eq!(back, s);
    let mut with = back.clone();
    with.autoscale.policy = Some(r#"{"minNodes":3,"maxNodes":5}"#.into());
    with.autoscale.next_decision = 3;
    assert_eq!(decode_state(&encode_state(&with)).unwrap(), with);
}

mod from_peers {
    use proptest::prelude::*;
    use tidal_core::operation::{Budget, Operation};
    use tidal_core::planner::scale::{plan_scale, ScaleRequest, Sizes};
    use tidal_core::slot_move::MovePhase;

    use super::*;
    use crate::api::{decode_request, CpRequest};
    use crate::command::apply;

    fn text() -> impl Strategy<Value = String> {
        ".{0,10}"
    }

    fn move_phase() -> impl Strategy<Value = MovePhase> {
        proptest::sample::select(vec![
            MovePhase::Copying,
            MovePhase::CatchUp,
            MovePhase::Fenced,
            MovePhase::Committed,
            MovePhase::Done,
            MovePhase::RollingBack,
            MovePhase::RolledBack,
        ])
    }

    fn replica_phase() -> impl Strategy<Value = ReplicaPhase> {
        proptest::sample::select(vec![
            ReplicaPhase::AddingLearner,
            ReplicaPhase::Promoting,
            ReplicaPhase::Done,
            ReplicaPhase::RollingBack,
            ReplicaPhase::RolledBack,
        ])
    }

    fn prg() -> impl Strategy<Value = PrgId> {
        (prop_oneof![Just("t".to_string()), "[a-z]{1,3}"], 0..6u32).prop_map(|(t, i)| PrgId::new(t, i))
    }

    fn node_info() -> impl Strategy<Value = NodeInfo> {
        (1..7u64, text(), text(), any::<bool>()).prop_map(|(id, zone, addr, draining)| NodeInfo {
            id,
            peer_addr: format!("{addr}:{id}"),
            client_addr: addr.clone(),
            http_addr: addr,
            zone,
            state: if draining { NodeState::Draining } else { NodeState::Active },
        })
    }

    /// Commands of most kinds, with ids near those a small cluster uses,
    /// so that many of them apply. `None` asks for an operation planned
    /// against the state at hand.
    fn command() -> impl Strategy<Value = Option<CpCommand>> {
        prop_oneof![20 => simple_command().prop_map(Some), 1 => Just(None)]
    }

    fn simple_command() -> impl Strategy<Value = CpCommand> {
        let id = 0..8u64;
        prop_oneof![
            3 => node_info().prop_map(CpCommand::RegisterNode),
            2 => (prop_oneof![Just("t".to_string()), "[a-z]{1,3}"], 1..33u32, 1..5u32)
                .prop_map(|(name, slots, prgs)| CpCommand::CreateTenant { name, slots, prgs }),
            1 => (prg(), 1..7u64).prop_map(|(prg, leader)| CpCommand::LeaderHint { prg, leader }),
            1 => proptest::collection::vec(1..7u64, 0..4).prop_map(CpCommand::SetCpMembers),
            1 => (proptest::collection::vec(1..7u64, 0..4), proptest::collection::vec(1..7u64, 0..3))
                .prop_map(|(voters, learners)| CpCommand::SetCpVoters { voters, learners }),
            1 => (1..4u32, proptest::option::of(proptest::collection::vec(1..7u64, 0..4)), proptest::option::of(0..9u64))
                .prop_map(|(count, members, expect_epoch)| CpCommand::AddPrgs { tenant: "t".into(), count, members, expect_epoch }),
            3 => (0..34u32, 0..4u32, proptest::option::of(0..3u32), 0..3u32).prop_map(|(first, n, from, to)| {
                CpCommand::StartMove { tenant: "t".into(), slots: (first..first + n).collect(), from, to: PrgId::new("t", to) }
            }),
            2 => (id.clone(), move_phase(), move_phase(), proptest::option::of(text()))
                .prop_map(|(id, expect, phase, error)| CpCommand::UpdateMove { id, expect, phase, progress: None, error }),
            1 => id.clone().prop_map(|id| CpCommand::CommitMove { id }),
            1 => id.clone().prop_map(|id| CpCommand::CancelMove { id }),
            1 => (prg(), 1..7u64, 1..7u64).prop_map(|(prg, from, to)| CpCommand::StartReplicaMove { prg, from, to }),
            1 => (id.clone(), replica_phase(), replica_phase(), proptest::option::of(any::<u64>()))
                .prop_map(|(id, expect, phase, lag)| CpCommand::UpdateReplicaMove { id, expect, phase, lag, error: None }),
            1 => (id.clone(), replica_phase(), any::<u64>(), any::<u64>())
                .prop_map(|(id, expect, lag, bytes)| CpCommand::ReplicaProgress { id, expect, lag, bytes }),
            1 => (id.clone(), text()).prop_map(|(id, text)| CpCommand::OperationNote { id, text }),
            1 => id.clone().prop_map(|id| CpCommand::OperationCreatePrgs { id }),
            1 => (id.clone(), 0..4usize).prop_map(|(id, step)| CpCommand::OperationStartStep { id, step }),
            1 => id.prop_map(|id| CpCommand::CancelOperation { id }),
        ]
    }

    /// An operation adding a PRG to tenant `t`, planned against `s`.
    fn operation(s: &ClusterState) -> Option<CpCommand> {
        let want = s.prgs_of("t").len() as u32 + 1;
        let req = ScaleRequest { add_nodes: Vec::new(), prgs: BTreeMap::from([("t".to_string(), want)]) };
        let plan = plan_scale(s, &req, &Sizes::default()).ok()?;
        Some(CpCommand::StartOperation(Box::new(Operation::new("scale_out", plan, Budget::default(), 1000, 1000))))
    }

    /// A state built by applying `cmds` to five nodes and a tenant `t`
    /// of 32 slots in 2 PRGs, and the commands as applied.
    fn run(cmds: Vec<Option<CpCommand>>) -> (ClusterState, Vec<CpCommand>) {
        let mut s = ClusterState::default();
        let node = |id: u64| NodeInfo {
            id,
            peer_addr: format!("127.0.0.1:{}", 7000 + id),
            client_addr: String::new(),
            http_addr: String::new(),
            zone: format!("z{}", id % 3),
            state: NodeState::Active,
        };
        let mut base: Vec<Option<CpCommand>> = (1..=3).map(|id| Some(CpCommand::RegisterNode(node(id)))).collect();
        base.push(Some(CpCommand::CreateTenant { name: "t".into(), slots: 32, prgs: 2 }));
        base.extend((4..=5).map(|id| Some(CpCommand::RegisterNode(node(id)))));
        let mut applied = Vec::new();
        for (now, c) in base.into_iter().chain(cmds).enumerate() {
            let Some(c) = c.or_else(|| operation(&s)) else { continue };
            apply(&mut s, now as u64, &c);
            applied.push(c);
        }
        (s, applied)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever a log entry, a snapshot or an app frame holds: a
        /// value or an error.
        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..256), version in 0u8..6) {
            let mut versioned = vec![0xFF, 0x00, version];
            versioned.extend_from_slice(&body);
            for b in [&body, &versioned] {
                let _ = decode_command(b);
                let _ = decode_state(b);
                let _ = decode_request(b);
            }
        }

        /// Commands and the states they build read back as written; cut
        /// short, they are errors.
        #[test]
        fn commands_and_states_round_trip(
            cmds in proptest::collection::vec(command(), 0..24),
            cut in any::<prop::sample::Index>(),
        ) {
            let (state, applied) = run(cmds);
            let bytes = encode_state(&state);
            prop_assert_eq!(decode_state(&bytes), Ok(state.clone()));
            prop_assert!(decode_state(&bytes[..cut.index(bytes.len())]).is_err());
            for c in applied {
                let bytes = encode_command(&c);
                prop_assert_eq!(decode_command(&bytes), Ok(c.clone()));
                prop_assert!(decode_command(&bytes[..cut.index(bytes.len())]).is_err());
                let req = encode(&CpRequest::Propose(c.clone()));
                prop_assert!(matches!(decode_request(&req), Ok(CpRequest::Propose(back)) if back == c));
            }
        }
    }
}
