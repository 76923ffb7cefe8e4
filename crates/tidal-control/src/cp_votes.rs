//! Which nodes vote in the control plane, and how its leader moves a vote
//! from one node to another.
//!
//! The control plane has 3 voters, or 5 once at least 5 nodes can vote.
//! A voter keeps its vote while it is Active; a Draining one (drained by
//! an operator, a SIGTERM, a shrink plan or self-healing) loses it to an
//! Active node that reports in, chosen to spread the votes over zones.
//! Raft's joint consensus makes each change safe; the steps around it
//! make it safe to resume:
//! 1. the state names the incoming nodes as learners (`SetCpVoters`), and
//!    each starts an empty `_cp` replica when it sees that;
//! 2. the leader adds them as Raft learners and waits until they have
//!    caught up;
//! 3. one membership change makes the new set the voters, the nodes left
//!    out leave the group;
//! 4. the state records the new voters and no learners; a node that no
//!    longer finds itself there deletes its replica.
//!
//! Each step is driven again from the state and the group's membership by
//! whichever node leads next, so a step cut short by a crash is redone.

use std::collections::BTreeSet;
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use openraft::{BasicNode, ChangeMembers};
use tidal_core::{ClusterState, NodeId, NodeState};

use crate::api::ControlPlane;
use crate::command::CpCommand;

/// Voters of a small cluster, and of one with enough nodes for more.
pub const FEW_VOTERS: usize = 3;
pub const MANY_VOTERS: usize = 5;

/// Longest the leader waits, in one step, for a learner to catch up.
const CATCH_UP: Duration = Duration::from_secs(20);

/// Apply `SetCpVoters`: every node named is registered and not removed,
/// there is a voter, and no node is both.
pub(crate) fn set(state: &mut ClusterState, voters: &[NodeId], learners: &[NodeId]) -> Result<(), String> {
    if voters.is_empty() {
        return Err("the control plane needs a voter".into());
    }
    for n in voters.iter().chain(learners) {
        if !state.nodes.contains_key(n) || state.removed_nodes.contains(n) {
            return Err(format!("node {n} is not in the cluster"));
        }
    }
    if let Some(n) = learners.iter().find(|n| voters.contains(n)) {
        return Err(format!("node {n} cannot be both a voter and a learner"));
    }
    state.cp_members = sorted(voters.iter().copied());
    state.cp_learners = sorted(learners.iter().copied());
    Ok(())
}

fn sorted(ids: impl Iterator<Item = NodeId>) -> Vec<NodeId> {
    ids.collect::<BTreeSet<_>>().into_iter().collect()
}

/// The voters the control plane should have, given its `voters` now, its
/// leader, and which nodes reported in lately (`fresh`). Voters that are
/// still Active keep their vote; a new voter must be Active and fresh. With
/// too few such nodes for 3 voters, nothing changes.
pub fn desired_voters(
    state: &ClusterState,
    voters: &BTreeSet<NodeId>,
    leader: NodeId,
    fresh: &dyn Fn(NodeId) -> bool,
) -> BTreeSet<NodeId> {
    // A voter keeps its vote while Active, or while it has yet to register
    // (a first voter from `--peers`); a new voter must be registered.
    let keeps = |n: &NodeId| {
        !state.removed_nodes.contains(n) && state.nodes.get(n).is_none_or(|i| i.state == NodeState::Active)
    };
    let eligible = |n: &NodeId| state.nodes.contains_key(n) && keeps(n);
    let mut keep: BTreeSet<NodeId> = voters.iter().copied().filter(keeps).collect();
    let mut candidates: BTreeSet<NodeId> =
        state.nodes.keys().copied().filter(|n| eligible(n) && !voters.contains(n) && fresh(*n)).collect();
    let pool = keep.len() + candidates.len();
    if pool < FEW_VOTERS {
        return voters.clone();
    }
    let target = if pool >= MANY_VOTERS { MANY_VOTERS } else { FEW_VOTERS };
    let zone = |n: NodeId| state.nodes.get(&n).map(|i| i.zone.as_str());
    let crowd = |set: &BTreeSet<NodeId>, n: NodeId| set.iter().filter(|v| **v != n && zone(**v) == zone(n)).count();
    while keep.len() > target {
        // Out first: a silent voter, then one sharing its zone most, then
        // the highest id; never the leader.
        let Some(out) =
            keep.iter().copied().filter(|n| *n != leader).max_by_key(|n| (!fresh(*n), crowd(&keep, *n), *n))
        else {
            break;
        };
        keep.remove(&out);
    }
    while keep.len() < target {
        let Some(new) = candidates.iter().copied().min_by_key(|n| (crowd(&keep, *n), *n)) else { break };
        candidates.remove(&new);
        keep.insert(new);
    }
    keep
}

/// On the control-plane leader: take the next step towards the voters
/// [`desired_voters`] asks for, given the nodes that reported in lately.
/// Answers what it did, if anything.
pub async fn step(cp: &ControlPlane, state: &ClusterState, fresh: &BTreeSet<NodeId>) -> Result<Option<String>, String> {
    let Some(g) = cp.local_group() else { return Ok(None) };
    let m = g.raft.metrics().borrow_watched().clone();
    if m.current_leader != Some(m.id) || state.cp_members.is_empty() {
        return Ok(None);
    }
    let membership = m.membership_config.membership();
    if membership.get_joint_config().len() > 1 {
        return Ok(None);
    }
    let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
    let learners: BTreeSet<NodeId> = membership.learner_ids().collect();
    let want = desired_voters(state, &voters, m.id, &|n| fresh.contains(&n));
    let record = |voters: &BTreeSet<NodeId>, learners: &BTreeSet<NodeId>| CpCommand::SetCpVoters {
        voters: voters.iter().copied().collect(),
        learners: learners.iter().copied().collect(),
    };
    let recorded = |v: &BTreeSet<NodeId>, l: &BTreeSet<NodeId>| {
        state.cp_members.iter().eq(v.iter()) && state.cp_learners.iter().eq(l.iter())
    };
    let failed = |what: &str, e: &dyn std::fmt::Display| format!("{what}: {e}");
    if want == voters {
        // Settled, or a change whose learners are no longer wanted: let
        // them go, and record what is.
        if !learners.is_empty() {
            g.raft
                .change_membership(ChangeMembers::RemoveNodes(learners.clone()), false)
                .await
                .map_err(|e| failed("removing control-plane learners", &e))?;
        }
        if recorded(&voters, &BTreeSet::new()) {
            return Ok(None);
        }
        cp.propose_as_leader(record(&voters, &BTreeSet::new()))
            .await
            .map_err(|e| failed("recording the voters", &e))?;
        return Ok(Some(format!("control-plane voters are {voters:?}")));
    }
    let incoming: BTreeSet<NodeId> = want.difference(&voters).copied().collect();
    if !recorded(&voters, &incoming) {
        cp.propose_as_leader(record(&voters, &incoming)).await.map_err(|e| failed("recording the learners", &e))?;
        return Ok(Some(format!("nodes {incoming:?} start control-plane replicas")));
    }
    for n in incoming.iter().filter(|n| !learners.contains(n)) {
        let Some(info) = state.nodes.get(n) else { return Err(format!("node {n} is not in the cluster")) };
        let node = BasicNode { addr: info.peer_addr.clone() };
        match tokio::time::timeout(CATCH_UP, g.raft.add_learner(*n, node, false)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(failed(&format!("adding node {n} as a control-plane learner"), &e)),
            Err(_) => return Err(format!("node {n} could not be added as a control-plane learner in time")),
        }
    }
    // Every entry after the joint configuration needs a majority of the
    // new voters too: they must have caught up before they vote.
    caught_up(&g, &incoming).await?;
    if !want.contains(&m.id) {
        // A leader that votes itself out leaves the group leaderless
        // until an election timeout: hand over first.
        if let Some(next) = want.intersection(&voters).next() {
            let _ = g.raft.trigger().transfer_leader(*next).await;
            return Ok(Some(format!("control-plane leadership handed to node {next}")));
        }
    }
    g.raft
        .change_membership(ChangeMembers::ReplaceAllVoters(want.clone()), false)
        .await
        .map_err(|e| failed("changing the control-plane voters", &e))?;
    cp.propose_as_leader(record(&want, &BTreeSet::new())).await.map_err(|e| failed("recording the voters", &e))?;
    Ok(Some(format!("control-plane voters moved from {voters:?} to {want:?}")))
}

/// Wait (up to [`CATCH_UP`]) until every node of `learners` has every
/// entry the leader had when this began.
async fn caught_up(g: &tidal_raft::host::GroupHandle, learners: &BTreeSet<NodeId>) -> Result<(), String> {
    let mut metrics = g.raft.metrics();
    let target = metrics.borrow_watched().last_log_index.unwrap_or(0);
    let behind = |m: &openraft::RaftMetrics<tidal_raft::types::TypeConfig>| {
        let matched = |n: &NodeId| m.replication.as_ref()?.get(n).copied().flatten().map(|l| l.index);
        learners.iter().find(|n| matched(n).is_none_or(|i| i < target)).copied()
    };
    let wait = async {
        loop {
            if behind(&metrics.borrow_watched()).is_none() {
                return Ok(());
            }
            if metrics.changed().await.is_err() {
                return Err("the control plane stopped".to_string());
            }
        }
    };
    match tokio::time::timeout(CATCH_UP, wait).await {
        Ok(r) => r,
        Err(_) => {
            let n = behind(&metrics.borrow_watched()).unwrap_or_default();
            Err(format!("node {n} is still catching up with the control plane"))
        }
    }
}

#[cfg(test)]
#[path = "cp_votes_tests.rs"]
mod tests;
