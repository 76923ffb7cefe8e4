use super::*;
use crate::cluster::{NodeInfo, Placement, Tenant};
use crate::operation::{Budget, Operation};
use crate::planner::scale::ScalePlan;
use proptest::prelude::*;

/// `nodes` active nodes and one tenant of `prgs` PRGs over 64 slots, PRG
/// `p` on nodes p+1, p+2, p+3 (wrapping), at routing epoch 7.
fn state(nodes: u64, prgs: u32) -> ClusterState {
    let mut s = ClusterState { version: 42, routing_epoch: 7, ..ClusterState::default() };
    for i in 1..=nodes {
        let info = NodeInfo {
            id: i,
            peer_addr: format!("127.0.0.1:{}", 7000 + i),
            client_addr: String::new(),
            http_addr: String::new(),
            zone: String::new(),
            state: NodeState::Active,
        };
        s.nodes.insert(i, info);
    }
    s.tenants.insert("default".into(), Tenant::new("default", 64, prgs));
    for p in 0..prgs {
        let members = (0..3).map(|k| 1 + (u64::from(p) + k) % nodes).collect();
        let id = PrgId::new("default", p);
        s.placements.insert(id.clone(), Placement::new(id, members, 1, Vec::new()));
    }
    s
}

fn sizes(prgs: u32) -> Sizes {
    let prg_bytes = (0..prgs).map(|p| (PrgId::new("default", p), 64 << 20)).collect();
    Sizes { prg_bytes, slot_bytes: BTreeMap::new(), rate: 32 << 20, step_ms: 500 }
}

fn target(prg: u32, members: &[NodeId], epoch: u64) -> TargetPlacement {
    TargetPlacement { prg: PrgId::new("default", prg), members: members.to_vec(), routing_epoch: epoch }
}

/// The layout after `plan` runs on `s`: each PRG's members and the slot owners.
fn run(s: &ClusterState, plan: &ShrinkPlan) -> (BTreeMap<PrgId, Vec<NodeId>>, Vec<u32>) {
    let mut members: BTreeMap<PrgId, Vec<NodeId>> =
        s.placements.values().map(|p| (p.prg.clone(), p.members.clone())).collect();
    for m in &plan.replica_moves {
        let ms = members.get_mut(&m.step.prg).unwrap();
        let at = ms.iter().position(|n| *n == m.step.from).expect("moves a member it has");
        assert!(!ms.contains(&m.step.to), "{m:?} onto a node that holds the PRG");
        ms[at] = m.step.to;
    }
    let mut owner = s.tenants["default"].owner.clone();
    for m in &plan.slot_moves {
        assert!(m.slots.len() <= SLOTS_PER_BATCH);
        for &slot in &m.slots {
            assert_eq!(owner[slot as usize], m.from.index, "slot {slot} moves from its owner");
            owner[slot as usize] = m.to.index;
        }
    }
    for p in &plan.remove_prgs {
        assert!(!owner.contains(&p.index), "{p} is deleted while it owns slots");
        members.remove(p);
    }
    for (prg, leader) in &plan.leader_changes {
        let ms = members.get_mut(prg).unwrap();
        let at = ms.iter().position(|n| n == leader).unwrap();
        ms.swap(0, at);
    }
    (members, owner)
}

#[test]
fn plan_states_move_only_as_the_runbook_says() {
    use PlanState::*;
    let allowed = [(Draft, Armed), (Draft, Cancelled), (Armed, Completed), (Armed, RolledBack)];
    for a in PlanState::ALL {
        for b in PlanState::ALL {
            assert_eq!(a.may_become(b), allowed.contains(&(a, b)), "{} -> {}", a.name(), b.name());
        }
    }
    assert!(PlanState::ALL.iter().filter(|s| s.is_finished()).count() == 3);
}

#[test]
fn five_to_three_nodes_and_eight_to_four_prgs() {
    let s = state(5, 8);
    let req = ShrinkRequest { nodes: Some(3), prgs: [("default".to_string(), 4)].into() };
    let plan = plan_shrink(&s, "shrink-p4", &req, &sizes(8), 1000).unwrap();
    assert_eq!(plan.state, PlanState::Draft);
    assert_eq!((plan.version, plan.routing_epoch, plan.created_ms), (42, 7, 1000));
    // The PRGs that stay (0-3) have 2 replicas on nodes 1, 2 and 5 and 3 on
    // nodes 3 and 4: of the nodes that hold the least, the newest go. Of
    // PRGs of equal size, the newest drain.
    assert_eq!(plan.remove_nodes, vec![2, 5]);
    assert_eq!(plan.remove_prgs, (4..8).map(|i| PrgId::new("default", i)).collect::<Vec<_>>());
    assert_eq!(plan.targets.len(), 4);
    let (members, owner) = run(&s, &plan);
    assert_eq!(members.len(), 4);
    for (prg, m) in &members {
        assert!(m.iter().all(|n| [1, 3, 4].contains(n)), "{prg} ends on {m:?}");
        assert_eq!(m.iter().collect::<BTreeSet<_>>().len(), 3);
        let t = plan.targets.iter().find(|t| t.prg == *prg).unwrap();
        let set = |m: &[NodeId]| m.iter().copied().collect::<BTreeSet<_>>();
        assert_eq!(set(&t.members), set(m), "the plan's moves lead to its targets");
        assert_eq!(t.members[0], m[0], "and its leaders");
        assert_eq!(t.routing_epoch, 7 + plan.epoch_bumps);
    }
    // Each PRG that stays ends with 16 of the 64 slots.
    for p in 0..4 {
        assert_eq!(owner.iter().filter(|o| **o == p).count(), 16);
    }
    // 64 MiB a PRG over 8 slots: the 32 slots of the drained PRGs move at
    // 8 MiB each, then the replicas of PRGs that took 8 of them, 128 MiB.
    assert!(plan.replica_moves.iter().all(|m| m.bytes == 128 << 20), "{:?}", plan.replica_moves);
    let slots: usize = plan.slot_moves.iter().map(|m| m.slots.len()).sum();
    assert_eq!(slots, 32);
    assert_eq!(plan.total_bytes, plan.replica_moves.len() as u64 * (128 << 20) + 32 * (8 << 20));
    assert_eq!(plan.epoch_bumps, (plan.replica_moves.len() + plan.slot_moves.len() + 4) as u64);
    let steps = plan.epoch_bumps + (plan.leader_changes.len() + 2) as u64;
    assert_eq!(plan.eta_ms, plan.total_bytes * 1000 / (32 << 20) + steps * 500);
    // The same input, the same plan.
    let again = plan_shrink(&s, "shrink-p4", &req, &sizes(8), 1000).unwrap();
    assert_eq!(again, plan);
}

#[test]
fn slots_move_in_batches_and_the_smallest_prgs_drain() {
    // 4 PRGs of 256 slots; PRG 0 is the smallest, so it drains.
    let mut s = state(4, 4);
    s.tenants.insert("default".into(), Tenant::new("default", 1024, 4));
    let mut sz = sizes(4);
    sz.prg_bytes.insert(PrgId::new("default", 0), 1 << 20);
    let req = ShrinkRequest { nodes: None, prgs: [("default".to_string(), 3)].into() };
    let plan = plan_shrink(&s, "p", &req, &sz, 0).unwrap();
    assert_eq!(plan.remove_prgs, vec![PrgId::new("default", 0)]);
    assert!(plan.remove_nodes.is_empty());
    assert!(plan.slot_moves.iter().all(|m| m.slots.len() <= SLOTS_PER_BATCH && m.from.index == 0));
    assert_eq!(plan.slot_moves.iter().map(|m| m.slots.len()).sum::<usize>(), 256);
    // 85 or 86 slots to each of the 3 PRGs that stay, in batches of 64.
    assert_eq!(plan.slot_moves.len(), 6);
}

#[test]
fn the_raw_form_drains_what_it_does_not_name_and_removes_empty_nodes() {
    let s = state(4, 3);
    // PRG 0 on 1,2,3; PRG 1 on 2,3,4; PRG 2 on 3,4,1. Keep 0 and 1, both on 1-3.
    let plan =
        make_plan(&s, "p", vec![target(0, &[1, 2, 3], 8), target(1, &[2, 3, 1], 8)], None, &sizes(3), 0).unwrap();
    assert_eq!(plan.remove_prgs, vec![PrgId::new("default", 2)]);
    assert_eq!(plan.remove_nodes, vec![4]);
    assert_eq!(plan.replica_moves.len(), 1);
    assert_eq!(plan.replica_moves[0].step, ReplicaStep { prg: PrgId::new("default", 1), from: 4, to: 1 });
    assert!(plan.leader_changes.is_empty(), "{:?}", plan.leader_changes);
    // Leaving the members as they are, but naming another leader.
    let plan =
        make_plan(&s, "p", vec![target(0, &[2, 1, 3], 8), target(1, &[2, 3, 4], 8)], None, &sizes(3), 0).unwrap();
    assert_eq!(plan.leader_changes, vec![(PrgId::new("default", 0), 2)]);
    assert!(plan.replica_moves.is_empty() && plan.remove_nodes.is_empty());
    // Nodes named to leave must end without a replica.
    let leaving: BTreeSet<NodeId> = [3].into();
    let r = make_plan(&s, "p", vec![target(0, &[1, 2, 3], 8)], Some(&leaving), &sizes(3), 0);
    assert_eq!(r, Err(ShrinkError::KeepsReplica(3)));
}

#[test]
fn bad_plans_are_refused() {
    let s = state(5, 4);
    let ok = || vec![target(0, &[1, 2, 3], 8)];
    let make = |id: &str, t: Vec<TargetPlacement>| make_plan(&s, id, t, None, &sizes(4), 0);
    assert!(make("shrink-p4", ok()).is_ok());
    for bad in ["", "has space", "a/b", &"x".repeat(65)] {
        assert_eq!(make(bad, ok()), Err(ShrinkError::BadId(bad.to_string())));
    }
    assert_eq!(make("p", vec![]), Err(ShrinkError::NoTargets));
    assert_eq!(make("p", vec![target(9, &[1, 2, 3], 8)]), Err(ShrinkError::UnknownPrg(PrgId::new("default", 9))));
    let twice = vec![target(0, &[1, 2, 3], 8), target(0, &[1, 2, 3], 8)];
    assert_eq!(make("p", twice), Err(ShrinkError::TargetTwice(PrgId::new("default", 0))));
    for members in [&[1, 2][..], &[1, 2, 2], &[1, 2, 3, 4]] {
        assert!(matches!(make("p", vec![target(0, members, 8)]), Err(ShrinkError::Members { .. })), "{members:?}");
    }
    assert!(matches!(make("p", vec![target(0, &[1, 2, 9], 8)]), Err(ShrinkError::NotInCluster { node: 9, .. })));
    for epoch in [6, 7] {
        assert!(matches!(make("p", vec![target(0, &[1, 2, 3], epoch)]), Err(ShrinkError::StaleEpoch { .. })));
    }
    // Naming every PRG where it is shrinks nothing.
    let all: Vec<TargetPlacement> = s.placements.values().map(|p| target(p.prg.index, &p.members, 8)).collect();
    assert!(matches!(make("p", all), Err(ShrinkError::NothingShrinks { nodes: 5, prgs: 4 })));
    // A draining node may not receive a replica.
    let mut draining = s.clone();
    draining.nodes.get_mut(&5).unwrap().state = NodeState::Draining;
    let r = make_plan(&draining, "p", vec![target(0, &[1, 2, 5], 8)], None, &sizes(4), 0);
    assert!(matches!(r, Err(ShrinkError::NotInCluster { node: 5, .. })), "{r:?}");

    let easy = |nodes: Option<u64>, prgs: &[(&str, u32)]| {
        let req = ShrinkRequest { nodes, prgs: prgs.iter().map(|(t, n)| (t.to_string(), *n)).collect() };
        plan_shrink(&s, "p", &req, &sizes(4), 0)
    };
    assert_eq!(easy(Some(2), &[]), Err(ShrinkError::TooFewNodes(2)));
    assert_eq!(easy(Some(6), &[]), Err(ShrinkError::NotFewerNodes { current: 5, wanted: 6 }));
    assert_eq!(easy(None, &[("nope", 1)]), Err(ShrinkError::UnknownTenant("nope".into())));
    for n in [0, 5] {
        assert!(matches!(easy(None, &[("default", n)]), Err(ShrinkError::BadPrgCount { current: 4, .. })), "{n}");
    }
    assert!(matches!(easy(Some(5), &[("default", 4)]), Err(ShrinkError::NothingShrinks { .. })));
}

#[test]
fn plans_are_recorded_once_and_armed_one_at_a_time_against_the_cluster_they_were_made_from() {
    let mut s = state(5, 4);
    let plan =
        |s: &ClusterState, id: &str| make_plan(s, id, vec![target(0, &[1, 2, 3], 8)], None, &sizes(4), 0).unwrap();
    let p1 = plan(&s, "p1");
    create(&mut s, &p1).unwrap();
    assert_eq!(create(&mut s, &p1), Err(ShrinkError::Duplicate("p1".into())));
    assert_eq!(check_arm(&s, "nope"), Err(ShrinkError::NotFound("nope".into())));
    check_arm(&s, "p1").unwrap();

    // Another plan is armed.
    let p2 = plan(&s, "p2");
    create(&mut s, &p2).unwrap();
    s.shrink_plans.get_mut("p2").unwrap().state = PlanState::Armed;
    assert_eq!(check_arm(&s, "p1"), Err(ShrinkError::OtherArmed("p2".into())));
    assert!(matches!(check_arm(&s, "p2"), Err(ShrinkError::State { state: PlanState::Armed, .. })));
    s.shrink_plans.get_mut("p2").unwrap().state = PlanState::Completed;

    // An operation runs.
    let mut op = Operation::new("scale_out", scale_plan(), Budget::default(), 1000, 1000);
    op.id = 3;
    s.operations.insert(3, op);
    assert_eq!(check_arm(&s, "p1"), Err(ShrinkError::Busy(3)));
    s.operations.clear();

    // The cluster changed: a slot moved (the routing epoch), a node began draining.
    s.routing_epoch += 1;
    assert!(matches!(check_arm(&s, "p1"), Err(ShrinkError::Stale { .. })));
    let stale = p1.clone();
    assert!(matches!(create(&mut s, &ShrinkPlan { id: "p3".into(), ..stale }), Err(ShrinkError::Stale { .. })));
    s.routing_epoch -= 1;
    s.nodes.get_mut(&4).unwrap().state = NodeState::Draining;
    assert!(p1.changed_since(&s).unwrap().contains("draining"));
    s.nodes.get_mut(&4).unwrap().state = NodeState::Active;
    s.nodes.remove(&5);
    assert!(p1.changed_since(&s).unwrap().contains("nodes"));
}

#[test]
fn a_draft_is_cancelled_and_nothing_else_changes() {
    let mut s = state(5, 4);
    let p = make_plan(&s, "p", vec![target(0, &[1, 2, 3], 8)], None, &sizes(4), 0).unwrap();
    create(&mut s, &p).unwrap();
    let before = s.clone();
    cancel_draft(&mut s, "p", 77).unwrap();
    assert_eq!((s.shrink_plans["p"].state, s.shrink_plans["p"].finished_ms), (PlanState::Cancelled, Some(77)));
    assert_eq!((&s.placements, &s.nodes, &s.tenants), (&before.placements, &before.nodes, &before.tenants));
    assert!(matches!(cancel_draft(&mut s, "p", 78), Err(ShrinkError::State { state: PlanState::Cancelled, .. })));
    assert!(matches!(check_arm(&s, "p"), Err(ShrinkError::State { .. })));
    assert_eq!(cancel_draft(&mut s, "q", 78), Err(ShrinkError::NotFound("q".into())));
}

#[test]
fn finished_plans_are_forgotten_oldest_first() {
    let mut s = state(5, 4);
    for i in 0..KEEP_FINISHED_PLANS + 5 {
        let p = make_plan(&s, &format!("p{i}"), vec![target(0, &[1, 2, 3], 8)], None, &sizes(4), 0).unwrap();
        create(&mut s, &p).unwrap();
        cancel_draft(&mut s, &p.id, i as u64).unwrap();
    }
    let p = make_plan(&s, "last", vec![target(0, &[1, 2, 3], 8)], None, &sizes(4), 0).unwrap();
    create(&mut s, &p).unwrap();
    assert_eq!(s.shrink_plans.len(), KEEP_FINISHED_PLANS + 1);
    assert!(!s.shrink_plans.contains_key("p0") && s.shrink_plans.contains_key("last"));
}

fn scale_plan() -> ScalePlan {
    ScalePlan {
        version: 0,
        add_nodes: Vec::new(),
        new_prgs: Vec::new(),
        replica_moves: Vec::new(),
        slot_moves: Vec::new(),
        leader_changes: Vec::new(),
        total_bytes: 0,
        epoch_bumps: 0,
        eta_ms: 0,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Whatever the easy form is asked, its plan ends with every PRG that
    /// stays on 3 distinct nodes that stay, every slot owned by a PRG that
    /// stays, slots balanced within one, and nothing on a removed node.
    #[test]
    fn an_easy_plan_leads_to_a_legal_balanced_layout(
        nodes in 4u64..9,
        prgs in 2u32..9,
        keep_nodes in 3u64..9,
        keep_prgs in 1u32..9,
        bytes in proptest::collection::vec(0u64..1000, 8),
    ) {
        let s = state(nodes, prgs);
        let mut sz = sizes(prgs);
        for (p, b) in bytes.iter().enumerate().take(prgs as usize) {
            sz.prg_bytes.insert(PrgId::new("default", p as u32), *b);
        }
        let req = ShrinkRequest { nodes: Some(keep_nodes.min(nodes)), prgs: [("default".to_string(), keep_prgs.min(prgs))].into() };
        match plan_shrink(&s, "p", &req, &sz, 0) {
            Err(ShrinkError::NothingShrinks { .. }) => prop_assert!(keep_nodes >= nodes && keep_prgs >= prgs),
            Err(e) => prop_assert!(false, "{e}"),
            Ok(plan) => {
                let (members, owner) = run(&s, &plan);
                prop_assert_eq!(members.len() as u32, keep_prgs.min(prgs));
                prop_assert_eq!(plan.remove_nodes.len() as u64, nodes - keep_nodes.min(nodes));
                for m in members.values() {
                    prop_assert_eq!(m.iter().collect::<BTreeSet<_>>().len(), 3);
                    prop_assert!(m.iter().all(|n| !plan.remove_nodes.contains(n)));
                }
                let mut counts: BTreeMap<u32, usize> = members.keys().map(|p| (p.index, 0)).collect();
                for o in &owner {
                    *counts.get_mut(o).expect("owned by a PRG that stays") += 1;
                }
                let (lo, hi) = (counts.values().min().unwrap(), counts.values().max().unwrap());
                prop_assert!(hi - lo <= 1, "{counts:?}");
            }
        }
    }
}
