//! What a node reports about itself: readiness (and why not), health, and
//! the JSON views of the admin API. Everything here is this node's own view;
//! `tidal status` merges the views of every node.

use std::collections::BTreeMap;

use openraft::async_runtime::WatchReceiver;
use serde::Serialize;
use tidal_control::NodeReport;
use tidal_core::{CacheState, ClusterState, NodeId, NodeInfo, Placement, Tenant};
use tokio::time::Instant;

use crate::node::Shared;

/// One Raft group as this node sees it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupReport {
    pub id: String,
    pub members: Vec<NodeId>,
    pub leader: Option<NodeId>,
    pub role: String,
    pub term: u64,
    pub last_log_index: u64,
    pub applied_index: u64,
    /// Quorum-replicated index, known on the leader only.
    pub commit_index: Option<u64>,
    /// Entries logged but not yet applied here.
    pub apply_lag: u64,
    /// Per voting follower, entries behind the leader's log (leader only).
    pub replication_lag: std::collections::BTreeMap<NodeId, u64>,
    /// Non-voting replicas catching up for a replica move.
    pub learners: Vec<NodeId>,
    /// Per learner, entries behind the leader's log (leader only).
    pub learner_lag: std::collections::BTreeMap<NodeId, u64>,
    pub epoch: u64,
    pub snapshot_index: Option<u64>,
}

pub fn group_reports(shared: &Shared) -> Vec<GroupReport> {
    shared
        .host
        .groups()
        .into_iter()
        .map(|g| {
            let m = g.raft.metrics().borrow_watched().clone();
            let last = m.last_log_index.unwrap_or(0);
            let applied = m.last_applied.map(|l| l.index).unwrap_or(0);
            let members: Vec<NodeId> = m.membership_config.membership().voter_ids().collect();
            let learners: Vec<NodeId> = m.membership_config.membership().learner_ids().collect();
            let mut replication = std::collections::BTreeMap::new();
            let mut learner_lag = std::collections::BTreeMap::new();
            let mut commit = None;
            if let Some(rep) = &m.replication {
                // Quorum and lag are the voters'; learners are shown apart.
                let mut matched: Vec<u64> = Vec::new();
                for (id, l) in rep.iter() {
                    let idx = l.map(|l| l.index).unwrap_or(0);
                    if !members.contains(id) {
                        learner_lag.insert(*id, last.saturating_sub(idx));
                        continue;
                    }
                    if *id != m.id {
                        replication.insert(*id, last.saturating_sub(idx));
                    }
                    matched.push(if *id == m.id { last } else { idx });
                }
                commit = quorum_index(matched);
            }
            GroupReport {
                id: g.name.to_string(),
                members,
                leader: m.current_leader,
                role: format!("{:?}", m.state).to_lowercase(),
                term: m.current_term,
                last_log_index: last,
                applied_index: applied,
                commit_index: commit,
                apply_lag: last.saturating_sub(applied),
                replication_lag: replication,
                learners,
                learner_lag,
                epoch: g.epoch,
                snapshot_index: m.snapshot.map(|s| s.index),
            }
        })
        .collect()
}

/// A node with what it hosts, by the control plane's placements.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeView {
    #[serde(flatten)]
    pub info: NodeInfo,
    /// PRG replicas placed here (voters).
    pub replicas: usize,
    /// Replicas catching up here as learners.
    pub learners: usize,
    /// PRGs whose last known leader is this node.
    pub leaders: usize,
    /// Slots of the PRGs this node holds a voting replica of.
    pub slots: u64,
    /// Slots of the PRGs this node leads.
    pub slots_led: u64,
    /// The routing epoch the node last reported as applied (none yet: it
    /// has not reported to the current control-plane leader).
    pub applied_epoch: Option<u64>,
    /// Bytes the node stores (its data directory), as it last reported.
    pub stored_bytes: Option<u64>,
    /// About how many bytes of rows its replicas hold, as it last reported.
    pub data_bytes: Option<u64>,
    /// Whether it was ready at its last report, and why not.
    pub ready: Option<bool>,
    pub not_ready_reasons: Vec<String>,
}

/// Every node with what it holds; `reports` is what each node last told
/// the control plane of itself.
pub fn node_views(state: &ClusterState, reports: &BTreeMap<NodeId, NodeReport>) -> Vec<NodeView> {
    let slots_of = |p: &Placement| -> u64 {
        state.tenants.get(&p.prg.tenant).map_or(0, |t| t.owner.iter().filter(|o| **o == p.prg.index).count() as u64)
    };
    state
        .nodes
        .values()
        .map(|n| {
            let hosted: Vec<&Placement> = state.placements_on(n.id).collect();
            let led: Vec<&Placement> = hosted.iter().copied().filter(|p| p.leader_hint == Some(n.id)).collect();
            let report = reports.get(&n.id);
            NodeView {
                info: n.clone(),
                replicas: hosted.len(),
                learners: state.placements.values().filter(|p| p.learners.contains(&n.id)).count(),
                leaders: led.len(),
                slots: hosted.iter().map(|p| slots_of(p)).sum(),
                slots_led: led.iter().map(|p| slots_of(p)).sum(),
                applied_epoch: report.map(|r| r.applied_epoch),
                stored_bytes: report.map(|r| r.stored_bytes),
                data_bytes: report.map(|r| r.data_bytes),
                ready: report.map(|r| r.ready),
                not_ready_reasons: report.map(|r| r.reasons.clone()).unwrap_or_default(),
            }
        })
        .collect()
}

/// The highest index a majority of `matched` (one per voter) has reached.
pub fn quorum_index(mut matched: Vec<u64>) -> Option<u64> {
    matched.sort_unstable_by(|a, b| b.cmp(a));
    matched.get(matched.len() / 2).copied()
}

/// Whether this node should receive traffic, and every reason it should not.
pub struct Readiness {
    pub ready: bool,
    pub reasons: Vec<String>,
    pub cache: CacheState,
    pub cache_age_ms: Option<u64>,
    pub strict_fallback: bool,
}

pub fn readiness(shared: &Shared) -> Readiness {
    let now = Instant::now();
    let cache = shared.cache.cache_state(now);
    let age = shared.cache.age_ms(now);
    let strict = shared.cache.strict_fallback(now);
    let mut reasons = Vec::new();
    match age {
        None => reasons.push("control-plane cache never synced since start".to_string()),
        Some(a) if cache != CacheState::Fresh => {
            reasons.push(format!("control-plane cache is {cache} (last confirmed {a} ms ago)"))
        }
        _ => {}
    }
    if strict {
        reasons.push("strict fallback is on: serving only PRGs this node leads".to_string());
    }
    if shared.draining() {
        reasons.push("draining: its leaderships and replicas move to other nodes".to_string());
    }
    let state = shared.cache.get();
    if state.tenants.is_empty() {
        reasons.push("no tenant exists yet (waiting for the initial nodes to register)".to_string());
    }
    let lag_limit = shared.config.ready_lag;
    for g in group_reports(shared) {
        if g.leader.is_none() {
            reasons.push(format!("group {} has no leader", g.id));
        }
        if g.apply_lag > lag_limit {
            reasons.push(format!("group {} apply lag {} > {lag_limit}", g.id, g.apply_lag));
        }
        // A follower on a draining node is leaving (or lost, and being
        // replaced): its lag holds nothing up.
        let leaving = |f: &u64| state.nodes.get(f).is_some_and(|n| n.state == tidal_core::NodeState::Draining);
        for (f, lag) in g.replication_lag.iter().filter(|(f, _)| !leaving(f)) {
            if *lag > lag_limit {
                reasons.push(format!("group {}: follower {f} is {lag} entries behind (> {lag_limit})", g.id));
            }
        }
    }
    for p in state.placements_on(shared.config.node_id) {
        if shared.host.group(&p.prg.to_string()).is_none() {
            reasons.push(format!("PRG {} is placed here but not running yet", p.prg));
        }
    }
    Readiness { ready: reasons.is_empty(), reasons, cache, cache_age_ms: age, strict_fallback: strict }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    pub status: &'static str,
    /// The control plane and every PRG this node hosts have a leader.
    pub quorum: bool,
    pub node_count: usize,
}

pub fn health(shared: &Shared) -> Health {
    let groups = group_reports(shared);
    let quorum = !groups.is_empty() && groups.iter().all(|g| g.leader.is_some());
    let ready = readiness(shared).ready;
    Health {
        status: if ready {
            "ok"
        } else if quorum {
            "degraded"
        } else {
            "unavailable"
        },
        quorum,
        node_count: shared.cache.get().nodes.len(),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterView {
    pub node_id: NodeId,
    pub ready: bool,
    pub not_ready_reasons: Vec<String>,
    pub cache_state: CacheState,
    pub cache_age_ms: Option<u64>,
    pub strict_fallback: bool,
    pub routing_epoch: u64,
    pub cp_version: u64,
    pub cp_members: Vec<NodeId>,
    /// Nodes catching up to take a control-plane vote.
    pub cp_learners: Vec<NodeId>,
    pub cp_leader: Option<NodeId>,
    pub uptime_ms: u64,
    pub nodes: Vec<NodeInfo>,
    pub tenants: Vec<TenantView>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantView {
    pub name: String,
    pub slots: u32,
    pub prgs: usize,
}

pub fn cluster_view(shared: &Shared) -> ClusterView {
    let r = readiness(shared);
    let state = shared.cache.get();
    let cp_leader =
        shared.host.group(tidal_core::ids::CP_GROUP).and_then(|g| g.raft.metrics().borrow_watched().current_leader);
    ClusterView {
        node_id: shared.config.node_id,
        ready: r.ready,
        not_ready_reasons: r.reasons,
        cache_state: r.cache,
        cache_age_ms: r.cache_age_ms,
        strict_fallback: r.strict_fallback,
        routing_epoch: state.routing_epoch,
        cp_version: state.version,
        cp_members: state.cp_members.clone(),
        cp_learners: state.cp_learners.clone(),
        cp_leader,
        uptime_ms: shared.started.elapsed().as_millis() as u64,
        nodes: state.nodes.values().cloned().collect(),
        tenants: state.tenants.values().map(|t| tenant_view(&state, t)).collect(),
    }
}

fn tenant_view(state: &ClusterState, t: &Tenant) -> TenantView {
    TenantView { name: t.name.clone(), slots: t.slots, prgs: state.prgs_of(&t.name).len() }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoutingView {
    pub routing_epoch: u64,
    pub tenants: Vec<TenantRouting>,
    pub placements: Vec<Placement>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantRouting {
    pub name: String,
    pub slots: u32,
    /// Contiguous slot ranges and the PRG owning each: `[first, last, prg]`.
    pub ranges: Vec<(u32, u32, String)>,
}

pub fn routing_view(shared: &Shared) -> RoutingView {
    let state = shared.cache.get();
    let tenants = state
        .tenants
        .values()
        .map(|t| {
            let mut ranges: Vec<(u32, u32, String)> = Vec::new();
            for s in 0..t.slots {
                let prg = t.prg_of_slot(s).to_string();
                match ranges.last_mut() {
                    Some((_, last, p)) if *p == prg && *last + 1 == s => *last = s,
                    _ => ranges.push((s, s, prg)),
                }
            }
            TenantRouting { name: t.name.clone(), slots: t.slots, ranges }
        })
        .collect();
    RoutingView {
        routing_epoch: state.routing_epoch,
        tenants,
        placements: state.placements.values().cloned().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::quorum_index;

    #[test]
    fn the_quorum_index_is_what_a_majority_has() {
        assert_eq!(quorum_index(vec![10, 7, 3]), Some(7));
        assert_eq!(quorum_index(vec![3, 10, 7]), Some(7));
        assert_eq!(quorum_index(vec![5, 5, 0]), Some(5));
        assert_eq!(quorum_index(vec![9, 8, 7, 6, 5]), Some(7));
        assert_eq!(quorum_index(vec![4]), Some(4));
        assert_eq!(quorum_index(vec![]), None);
    }
}
