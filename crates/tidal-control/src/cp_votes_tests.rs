use std::collections::BTreeSet;

use proptest::prelude::*;
use tidal_core::{ClusterState, NodeId, NodeState};

use super::{desired_voters, FEW_VOTERS, MANY_VOTERS};
use crate::command::ops::tests::{node, ok, refused};
use crate::command::{apply, CpCommand};

/// `n` Active nodes; node `i` in zone `z{i % zones}`.
fn cluster(n: u64, zones: u64) -> ClusterState {
    let mut s = ClusterState::default();
    for id in 1..=n {
        let mut info = node(id);
        info.zone = format!("z{}", id % zones);
        apply(&mut s, 0, &CpCommand::RegisterNode(info));
    }
    s
}

fn set(ids: &[NodeId]) -> BTreeSet<NodeId> {
    ids.iter().copied().collect()
}

fn all_fresh(_: NodeId) -> bool {
    true
}

#[test]
fn three_voters_grow_to_five_once_five_nodes_can_vote() {
    let s = cluster(4, 1);
    assert_eq!(desired_voters(&s, &set(&[1, 2, 3]), 1, &all_fresh), set(&[1, 2, 3]));
    let s = cluster(7, 1);
    assert_eq!(desired_voters(&s, &set(&[1, 2, 3]), 1, &all_fresh), set(&[1, 2, 3, 4, 5]));
    // A node that has not reported in lately is no candidate.
    let silent = |n: NodeId| n != 4;
    assert_eq!(desired_voters(&s, &set(&[1, 2, 3]), 1, &silent), set(&[1, 2, 3, 5, 6]));
}

#[test]
fn a_draining_voter_loses_its_vote_to_an_active_node() {
    let mut s = cluster(4, 1);
    s.nodes.get_mut(&2).unwrap().state = NodeState::Draining;
    assert_eq!(desired_voters(&s, &set(&[1, 2, 3]), 1, &all_fresh), set(&[1, 3, 4]));
    // With no node to take it, the vote stays where it is.
    let mut s = cluster(3, 1);
    s.nodes.get_mut(&2).unwrap().state = NodeState::Draining;
    assert_eq!(desired_voters(&s, &set(&[1, 2, 3]), 1, &all_fresh), set(&[1, 2, 3]));
    // Five voters, one draining, four nodes left: three voters, the leader kept.
    let mut s = cluster(5, 1);
    s.nodes.get_mut(&1).unwrap().state = NodeState::Draining;
    let want = desired_voters(&s, &set(&[1, 2, 3, 4, 5]), 5, &all_fresh);
    assert_eq!(want.len(), FEW_VOTERS);
    assert!(want.contains(&5) && !want.contains(&1), "{want:?}");
    // A removed node never votes.
    let mut s = cluster(4, 1);
    s.removed_nodes.insert(4);
    s.nodes.get_mut(&3).unwrap().state = NodeState::Draining;
    assert_eq!(desired_voters(&s, &set(&[1, 2, 3]), 1, &all_fresh), set(&[1, 2, 3]));
    // A first voter that has yet to register keeps its vote.
    let mut s = cluster(4, 1);
    s.nodes.remove(&3);
    assert_eq!(desired_voters(&s, &set(&[1, 2, 3]), 1, &all_fresh), set(&[1, 2, 3]));
}

#[test]
fn new_voters_spread_over_zones() {
    // Zones: 1,4,7 in z1; 2,5,8 in z2; 3,6,9 in z0.
    let s = cluster(9, 3);
    let want = desired_voters(&s, &set(&[1, 4, 7]), 1, &all_fresh);
    let zones: BTreeSet<String> = want.iter().map(|n| s.nodes[n].zone.clone()).collect();
    assert_eq!(want.len(), MANY_VOTERS);
    assert_eq!(zones.len(), 3, "{want:?}");
    // Shrinking to three drops voters from the crowded zone first.
    let mut s = cluster(4, 3);
    s.nodes.get_mut(&2).unwrap().state = NodeState::Draining;
    let want = desired_voters(&s, &set(&[1, 2, 3, 4]), 4, &all_fresh);
    assert_eq!(want, set(&[1, 3, 4]));
}

#[test]
fn voters_and_learners_are_recorded_only_for_nodes_in_the_cluster() {
    let mut s = cluster(5, 1);
    ok(&mut s, CpCommand::SetCpVoters { voters: vec![3, 1, 2], learners: vec![5] });
    assert_eq!((s.cp_members.clone(), s.cp_learners.clone()), (vec![1, 2, 3], vec![5]));
    let before = s.clone();
    assert!(refused(&mut s, CpCommand::SetCpVoters { voters: vec![], learners: vec![1] }).contains("needs a voter"));
    assert!(refused(&mut s, CpCommand::SetCpVoters { voters: vec![1, 9], learners: vec![] }).contains("node 9"));
    assert!(refused(&mut s, CpCommand::SetCpVoters { voters: vec![1, 2], learners: vec![2] }).contains("both"));
    s.removed_nodes.insert(4);
    assert!(refused(&mut s, CpCommand::SetCpVoters { voters: vec![1, 4], learners: vec![] }).contains("node 4"));
    s.removed_nodes.clear();
    assert_eq!(s, before);
}

proptest! {
    /// Whatever the cluster, the voters asked for are 3 or 5 Active nodes
    /// (or the voters as they are), keep every Active voter they can, and
    /// include the leader while it stays Active.
    #[test]
    fn desired_voters_are_a_small_odd_set_of_active_nodes(
        n in 1..9u64,
        zones in 1..4u64,
        draining in proptest::collection::btree_set(1..9u64, 0..4),
        voters in proptest::collection::btree_set(1..9u64, 1..6),
        silent in proptest::collection::btree_set(1..9u64, 0..3),
    ) {
        let mut s = cluster(n, zones);
        for d in &draining {
            if let Some(i) = s.nodes.get_mut(d) {
                i.state = NodeState::Draining;
            }
        }
        let voters: BTreeSet<NodeId> = voters.into_iter().filter(|v| *v <= n).collect();
        prop_assume!(!voters.is_empty());
        let leader = *voters.iter().next().unwrap();
        let fresh = |id: NodeId| !silent.contains(&id);
        let want = desired_voters(&s, &voters, leader, &fresh);
        if want != voters {
            prop_assert!(want.len() == FEW_VOTERS || want.len() == MANY_VOTERS, "{want:?}");
            prop_assert!(want.iter().all(|v| s.nodes[v].state == NodeState::Active));
            for v in want.difference(&voters) {
                prop_assert!(fresh(*v), "silent node {v} became a voter");
            }
            let active_voters = voters.iter().filter(|v| s.nodes[*v].state == NodeState::Active).count();
            prop_assert!(want.intersection(&voters).count() >= active_voters.min(want.len()));
            if s.nodes[&leader].state == NodeState::Active {
                prop_assert!(want.contains(&leader));
            }
        }
        // Asking again from what was asked for changes nothing more.
        prop_assert_eq!(desired_voters(&s, &want, leader, &fresh), want);
    }
}
