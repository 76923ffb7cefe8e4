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

    const LIMITS: HealthLimits = HealthLimits { report_ms: 5000, fence_budget_ms: 2000 };

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
}
