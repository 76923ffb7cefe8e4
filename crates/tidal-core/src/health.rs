//! The cluster's health, as the gates of an operation check it: every
//! active node reports in, and is ready (its control-plane cache Fresh,
//! strict fallback off, its groups led and their lags under the limit, as
//! the node itself says), and no slot move has been fenced longer than its
//! budget. Plain data in, every reason it is not healthy out.

use std::collections::BTreeMap;

use crate::cluster::{ClusterState, NodeState};
use crate::ids::NodeId;
use crate::slot_move::MovePhase;

/// What a node last said of itself, and how long ago.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeHealth {
    pub ready: bool,
    pub reasons: Vec<String>,
    /// Since the report arrived, in ms.
    pub age_ms: u64,
}

/// Limits the health check holds the cluster to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthLimits {
    /// A report older than this counts as none.
    pub report_ms: u64,
    /// The longest a slot may stay fenced.
    pub fence_budget_ms: u64,
    /// The disruption budget's floor: a move starts only while every PRG
    /// it touches keeps at least this many replicas serving, not counting
    /// the one it moves away.
    pub min_available: usize,
}

/// The default floor: a majority of 3 replicas.
pub const MIN_AVAILABLE: usize = 2;

/// Why a move touching `prgs` must not start now (each PRG with the node
/// whose replica it moves away, if any): the PRGs short of
/// `limits.min_available` replicas on nodes that reported in within the
/// limits, ready or Draining.
pub fn short_of_replicas(
    state: &ClusterState,
    reports: &BTreeMap<NodeId, NodeHealth>,
    limits: HealthLimits,
    prgs: &[(crate::ids::PrgId, Option<NodeId>)],
) -> Vec<String> {
    // A Draining node answers not ready (so that clients go elsewhere),
    // but its replicas still serve while it reports in.
    let draining = |n: &NodeId| state.nodes.get(n).is_some_and(|i| i.state == NodeState::Draining);
    let serving = |n: &NodeId| reports.get(n).is_some_and(|r| (r.ready || draining(n)) && r.age_ms <= limits.report_ms);
    let mut out = Vec::new();
    for (prg, leaving) in prgs {
        let Some(p) = state.placements.get(prg) else { continue };
        let up: Vec<NodeId> = p.members.iter().copied().filter(|n| Some(*n) != *leaving && serving(n)).collect();
        if up.len() < limits.min_available {
            let without = leaving.map(|n| format!(" besides node {n}'s, which moves")).unwrap_or_default();
            out.push(format!(
                "{prg} has {} replicas serving{without} ({up:?}); the disruption budget keeps at least {}",
                up.len(),
                limits.min_available
            ));
        }
    }
    out
}

/// Every reason the cluster is not healthy now (none: healthy).
pub fn cluster_problems(
    state: &ClusterState,
    reports: &BTreeMap<NodeId, NodeHealth>,
    now_ms: u64,
    limits: HealthLimits,
) -> Vec<String> {
    let mut out = Vec::new();
    for n in state.nodes.values().filter(|n| n.state == NodeState::Active) {
        match reports.get(&n.id) {
            None => out.push(format!("node {} has not reported to the control-plane leader", n.id)),
            Some(r) if r.age_ms > limits.report_ms => {
                out.push(format!("node {} last reported {} ms ago", n.id, r.age_ms))
            }
            Some(r) if !r.ready => {
                let why = if r.reasons.is_empty() { "no reason given".to_string() } else { r.reasons.join("; ") };
                out.push(format!("node {} is not ready: {why}", n.id));
            }
            Some(_) => {}
        }
    }
    for m in state.moves.values().filter(|m| m.phase == MovePhase::Fenced) {
        let fenced = now_ms.saturating_sub(m.fenced_ms.unwrap_or(now_ms));
        if fenced > limits.fence_budget_ms {
            out.push(format!(
                "move {} has fenced its slots for {fenced} ms (budget {} ms)",
                m.id, limits.fence_budget_ms
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::NodeInfo;

    fn state(nodes: u64) -> ClusterState {
        let mut s = ClusterState::default();
        for id in 1..=nodes {
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
        s
    }

    const LIMITS: HealthLimits = HealthLimits { report_ms: 5000, fence_budget_ms: 2000, min_available: 2 };

    fn ready(age_ms: u64) -> NodeHealth {
        NodeHealth { ready: true, reasons: Vec::new(), age_ms }
    }

    #[test]
    fn ready_nodes_that_report_make_a_healthy_cluster() {
        let reports = (1..=3).map(|n| (n, ready(100))).collect();
        assert!(cluster_problems(&state(3), &reports, 0, LIMITS).is_empty());
    }

    #[test]
    fn a_fence_past_its_budget_is_named() {
        use crate::slot_move::{MoveProgress, SlotMove};
        let mut s = state(3);
        let reports = (1..=3).map(|n| (n, ready(100))).collect();
        let m = SlotMove {
            id: 7,
            tenant: "default".into(),
            slots: vec![1],
            from: 0,
            to: 1,
            phase: MovePhase::Fenced,
            progress: MoveProgress::default(),
            planned_epoch: 1,
            commit_epoch: None,
            created_ms: 0,
            updated_ms: 0,
            fenced_ms: Some(10_000),
            finished_ms: None,
            cancel_requested: false,
            error: None,
        };
        s.moves.insert(7, m);
        assert!(cluster_problems(&s, &reports, 11_000, LIMITS).is_empty());
        assert_eq!(
            cluster_problems(&s, &reports, 12_500, LIMITS),
            vec!["move 7 has fenced its slots for 2500 ms (budget 2000 ms)".to_string()]
        );
    }

    #[test]
    fn silent_stale_or_unready_nodes_are_named() {
        let mut s = state(4);
        s.nodes.get_mut(&4).unwrap().state = NodeState::Draining;
        let mut reports: BTreeMap<NodeId, NodeHealth> = BTreeMap::new();
        reports.insert(1, ready(9000));
        reports
            .insert(2, NodeHealth { ready: false, reasons: vec!["control-plane cache is Stale".into()], age_ms: 10 });
        let p = cluster_problems(&s, &reports, 0, LIMITS);
        assert_eq!(
            p,
            vec![
                "node 1 last reported 9000 ms ago".to_string(),
                "node 2 is not ready: control-plane cache is Stale".to_string(),
                "node 3 has not reported to the control-plane leader".to_string(),
            ]
        );
    }

    #[test]
    fn a_move_waits_while_its_prg_is_short_of_serving_replicas() {
        use crate::cluster::Placement;
        use crate::ids::PrgId;
        let mut s = state(5);
        let prg = PrgId::new("t", 0);
        s.placements.insert(prg.clone(), Placement::new(prg.clone(), vec![1, 2, 3], 1, Vec::new()));
        let mut reports: BTreeMap<NodeId, NodeHealth> = (1..=5).map(|n| (n, ready(100))).collect();
        // All up: moving node 1's replica away leaves two serving.
        assert!(short_of_replicas(&s, &reports, LIMITS, &[(prg.clone(), Some(1))]).is_empty());
        // Node 3 silent: moving node 1's leaves one; a slot move counts two.
        reports.insert(3, ready(9000));
        let why = short_of_replicas(&s, &reports, LIMITS, &[(prg.clone(), Some(1))]);
        assert_eq!(why.len(), 1);
        assert!(why[0].contains("t:0 has 1 replicas serving besides node 1's") && why[0].contains("at least 2"));
        assert!(short_of_replicas(&s, &reports, LIMITS, &[(prg.clone(), None)]).is_empty());
        // Moving the silent node's own replica away (healing it) goes on.
        assert!(short_of_replicas(&s, &reports, LIMITS, &[(prg.clone(), Some(3))]).is_empty());
        // A Draining node's replica serves although the node is not ready;
        // an unready Active one's does not.
        reports.insert(3, ready(100));
        s.nodes.get_mut(&2).unwrap().state = NodeState::Draining;
        reports.insert(2, NodeHealth { ready: false, reasons: vec!["draining".into()], age_ms: 10 });
        assert!(short_of_replicas(&s, &reports, LIMITS, &[(prg.clone(), Some(1))]).is_empty());
        reports.insert(3, NodeHealth { ready: false, reasons: vec!["lagging".into()], age_ms: 10 });
        assert_eq!(short_of_replicas(&s, &reports, LIMITS, &[(prg.clone(), Some(1))]).len(), 1);
        // A floor of 1 lets it go on.
        let one = HealthLimits { min_available: 1, ..LIMITS };
        assert!(short_of_replicas(&s, &reports, one, &[(prg, Some(1))]).is_empty());
    }
}
