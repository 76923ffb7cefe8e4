use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;

fn node(id: NodeId, zone: &str, capacity: u64) -> PlanNode {
    PlanNode { id, zone: zone.to_string(), capacity, draining: false }
}

fn prg(i: u32, members: &[NodeId]) -> PlanPrg {
    PlanPrg { id: PrgId::new("default", i), members: members.to_vec() }
}

/// Replicas placed on a node that did not hold them.
fn placed_anew(prgs: &[PlanPrg], members: &BTreeMap<PrgId, Vec<NodeId>>) -> usize {
    prgs.iter().map(|p| members[&p.id].iter().filter(|m| !p.members.contains(m)).count()).sum()
}

/// Check the hard rules and the shares; panics with what is wrong.
fn check(nodes: &[PlanNode], prgs: &[PlanPrg], l: &ReplicaLayout) {
    let zone: BTreeMap<NodeId, &str> = nodes.iter().map(|n| (n.id, n.zone.as_str())).collect();
    let eligible: BTreeSet<NodeId> = nodes.iter().filter(|n| !n.draining && n.capacity > 0).map(|n| n.id).collect();
    let zones: BTreeSet<&str> = eligible.iter().map(|n| zone[n]).collect();
    let mut replicas: BTreeMap<NodeId, u64> = eligible.iter().map(|n| (*n, 0)).collect();
    let mut leaders = replicas.clone();
    for p in prgs {
        let m = &l.members[&p.id];
        assert_eq!(m.iter().collect::<BTreeSet<_>>().len(), REPLICAS, "{}: {m:?}", p.id);
        assert!(m.iter().all(|n| eligible.contains(n)), "{}: {m:?} uses a node that is not eligible", p.id);
        if zones.len() >= REPLICAS {
            assert_eq!(m.iter().map(|n| zone[n]).collect::<BTreeSet<_>>().len(), REPLICAS, "{}: zones", p.id);
        }
        for n in m {
            *replicas.get_mut(n).unwrap() += 1;
        }
        *leaders.get_mut(&m[0]).unwrap() += 1;
    }
    for (n, c) in &replicas {
        let (lo, hi) = l.replica_share[n];
        assert!((lo..=hi).contains(c), "node {n} holds {c} replicas, share {lo}..={hi}");
        let (lo, hi) = l.leader_share[n];
        assert!((lo..=hi).contains(&leaders[n]), "node {n} leads {}, share {lo}..={hi}", leaders[n]);
    }
    // The moves turn the old members into the new ones.
    for p in prgs.iter().filter(|p| !p.members.is_empty()) {
        let mut m: BTreeSet<NodeId> = p.members.iter().copied().collect();
        for s in l.moves.iter().filter(|s| s.prg == p.id) {
            assert!(m.remove(&s.from) && m.insert(s.to), "{s:?}");
        }
        assert_eq!(m, l.members[&p.id].iter().copied().collect(), "{}", p.id);
    }
}

/// Every layout the hard rules and the shares allow, by brute force; the
/// least number of replicas placed anew.
fn brute_force_least(nodes: &[PlanNode], prgs: &[PlanPrg], share: &BTreeMap<NodeId, (u64, u64)>) -> Option<usize> {
    let eligible: Vec<&PlanNode> = nodes.iter().filter(|n| !n.draining && n.capacity > 0).collect();
    let zones: BTreeSet<&str> = eligible.iter().map(|n| n.zone.as_str()).collect();
    let mut triples = Vec::new();
    for a in 0..eligible.len() {
        for b in a + 1..eligible.len() {
            for c in b + 1..eligible.len() {
                let t = [eligible[a], eligible[b], eligible[c]];
                let z: BTreeSet<&str> = t.iter().map(|n| n.zone.as_str()).collect();
                if zones.len() < REPLICAS || z.len() == REPLICAS {
                    triples.push(t.map(|n| n.id));
                }
            }
        }
    }
    let mut best = None;
    let mut pick = vec![0usize; prgs.len()];
    loop {
        let mut count: BTreeMap<NodeId, u64> = BTreeMap::new();
        for &i in &pick {
            for n in triples[i] {
                *count.entry(n).or_default() += 1;
            }
        }
        let within = share.iter().all(|(n, (lo, hi))| (*lo..=*hi).contains(&count.get(n).copied().unwrap_or(0)));
        if within {
            let cost: usize = prgs
                .iter()
                .zip(&pick)
                .map(|(p, &i)| triples[i].iter().filter(|n| !p.members.contains(n)).count())
                .sum();
            best = Some(best.map_or(cost, |b: usize| b.min(cost)));
        }
        // Next combination.
        let mut k = 0;
        loop {
            if k == pick.len() {
                return best;
            }
            pick[k] += 1;
            if pick[k] < triples.len() {
                break;
            }
            pick[k] = 0;
            k += 1;
        }
    }
}

#[test]
fn a_fourth_and_fifth_node_take_their_share_with_the_fewest_moves() {
    let nodes: Vec<PlanNode> = (1..=5).map(|i| node(i, "z", 1)).collect();
    let prgs: Vec<PlanPrg> =
        (0..4).map(|i| prg(i, &[1 + i as u64 % 3, 1 + (i as u64 + 1) % 3, 1 + (i as u64 + 2) % 3])).collect();
    let l = place_replicas(&nodes, &prgs).unwrap();
    check(&nodes, &prgs, &l);
    // 12 replicas over 5 nodes: 2 or 3 each, so nodes 4 and 5 take 4 or 5 in all.
    let new: usize = l.members.values().map(|m| m.iter().filter(|n| **n >= 4).count()).sum();
    assert_eq!(l.moves.len(), new);
    assert_eq!(new, 4, "{l:?}");
}

#[test]
fn new_prgs_are_placed_without_moving_the_old_ones_when_that_balances() {
    let nodes: Vec<PlanNode> = (1..=6).map(|i| node(i, &format!("z{}", i % 3), 1)).collect();
    let mut prgs = vec![prg(0, &[1, 2, 3]), prg(1, &[4, 5, 6])];
    prgs.extend((2..4).map(|i| prg(i, &[])));
    let l = place_replicas(&nodes, &prgs).unwrap();
    check(&nodes, &prgs, &l);
    assert!(l.moves.is_empty(), "{:?}", l.moves);
    assert!(l.leader_changes.is_empty());
}

#[test]
fn a_draining_node_is_emptied() {
    let mut nodes: Vec<PlanNode> = (1..=4).map(|i| node(i, "z", 1)).collect();
    nodes[0].draining = true;
    let prgs = vec![prg(0, &[1, 2, 3]), prg(1, &[2, 3, 1])];
    let l = place_replicas(&nodes, &prgs).unwrap();
    check(&nodes, &prgs, &l);
    assert_eq!(l.moves.len(), 2);
    assert!(l.moves.iter().all(|m| m.from == 1 && m.to == 4));
    // PRG 0 was led by the draining node.
    assert_eq!(l.leader_changes.len(), 1);
}

#[test]
fn capacity_weights_the_shares() {
    let nodes = vec![node(1, "z", 2), node(2, "z", 1), node(3, "z", 1), node(4, "z", 2)];
    let prgs: Vec<PlanPrg> = (0..6).map(|i| prg(i, &[])).collect();
    let l = place_replicas(&nodes, &prgs).unwrap();
    check(&nodes, &prgs, &l);
    // 18 replicas: 6 each on the large nodes (each PRG at most once), 3 on the small.
    assert_eq!(l.replica_share[&1], (6, 6));
    assert_eq!(l.replica_share[&2], (3, 3));
}

#[test]
fn bad_input_is_refused() {
    let nodes: Vec<PlanNode> = (1..=2).map(|i| node(i, "z", 1)).collect();
    assert_eq!(place_replicas(&nodes, &[prg(0, &[])]), Err(PlanError::NotEnoughNodes { eligible: 2 }));
    let nodes: Vec<PlanNode> = (1..=3).map(|i| node(i, "z", 1)).collect();
    assert_eq!(
        place_replicas(&nodes, &[prg(0, &[]), prg(0, &[])]),
        Err(PlanError::DuplicatePrg(PrgId::new("default", 0)))
    );
}

#[test]
fn the_same_input_gives_the_same_plan() {
    let nodes: Vec<PlanNode> = (1..=7).map(|i| node(i, &format!("z{}", i % 3), 1 + i % 2)).collect();
    let prgs: Vec<PlanPrg> = (0..9).map(|i| prg(i, if i < 5 { &[1, 2, 3] } else { &[] })).collect();
    assert_eq!(place_replicas(&nodes, &prgs), place_replicas(&nodes, &prgs));
}

fn small_cluster() -> impl Strategy<Value = (Vec<PlanNode>, Vec<PlanPrg>)> {
    (3u64..=5, 1usize..=3, proptest::collection::vec(1u64..=2, 5), proptest::option::of(0usize..5), 1u32..=3)
        .prop_flat_map(|(n, zones, caps, drain, p)| {
            let nodes: Vec<PlanNode> = (1..=n)
                .map(|i| PlanNode {
                    id: i,
                    zone: format!("z{}", i as usize % zones),
                    capacity: caps[i as usize - 1],
                    draining: drain == Some(i as usize - 1) && n > 3,
                })
                .collect();
            let members = proptest::collection::vec(
                proptest::option::of(proptest::sample::subsequence((1..=n).collect::<Vec<_>>(), 3).prop_shuffle()),
                p as usize,
            );
            (Just(nodes), members)
        })
        .prop_map(|(nodes, members)| {
            let prgs = members.into_iter().enumerate().map(|(i, m)| prg(i as u32, &m.unwrap_or_default())).collect();
            (nodes, prgs)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn the_plan_is_valid_and_moves_as_few_replicas_as_brute_force((nodes, prgs) in small_cluster()) {
        let l = place_replicas(&nodes, &prgs).map_err(|e| TestCaseError::fail(e.to_string()))?;
        check(&nodes, &prgs, &l);
        let least = brute_force_least(&nodes, &prgs, &l.replica_share).expect("brute force finds the plan's layout");
        prop_assert_eq!(placed_anew(&prgs, &l.members), least);
    }

    #[test]
    fn large_random_clusters_keep_the_hard_rules(
        n in 3u64..40, zones in 1usize..6, p in 1u32..120, seed in any::<u64>(),
    ) {
        let nodes: Vec<PlanNode> =
            (1..=n).map(|i| node(i, &format!("z{}", i as usize % zones), 1 + (seed >> (i % 60)) % 3)).collect();
        let prgs: Vec<PlanPrg> = (0..p)
            .map(|i| {
                let a = 1 + (seed.wrapping_mul(u64::from(i) + 7) % n);
                let members = if i % 4 == 0 { vec![] } else { vec![a, 1 + a % n, 1 + (a + 1) % n] };
                prg(i, &members)
            })
            .collect();
        let l = place_replicas(&nodes, &prgs).map_err(|e| TestCaseError::fail(e.to_string()))?;
        check(&nodes, &prgs, &l);
    }

    #[test]
    fn offering_some_nodes_plans_as_well_as_offering_all(
        n in 6u64..30, zones in 1usize..5, p in 10u32..80, joined in 1u64..4, seed in any::<u64>(),
    ) {
        let nodes: Vec<PlanNode> = (1..=n).map(|i| node(i, &format!("z{}", i as usize % zones), 1)).collect();
        let old = n - joined;
        let prgs: Vec<PlanPrg> = (0..p)
            .map(|i| {
                let a = 1 + (seed.wrapping_mul(u64::from(i) + 3) >> 7) % old;
                prg(i, &[a, 1 + a % old, 1 + (a + 1) % old])
            })
            .collect();
        let all = place_replicas_with(&nodes, &prgs, usize::MAX).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let some = place_replicas_with(&nodes, &prgs, 0).map_err(|e| TestCaseError::fail(e.to_string()))?;
        check(&nodes, &prgs, &some);
        prop_assert_eq!(placed_anew(&prgs, &some.members), placed_anew(&prgs, &all.members));
    }
}
