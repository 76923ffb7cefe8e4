//! From what the nodes report to what the recommender reads: each node's
//! load (as it measures itself between two reports) grouped per metric the
//! way the HPA groups pods, each tenant's load from its PRGs' leaders, and
//! when the cluster last changed, from the operations the control plane
//! journals.
//!
//! | metric | kind | a node's figure | unit of the figure |
//! |---|---|---|---|
//! | `cpu` | Resource | CPU time used a second, against its cores | millicores |
//! | `memory` | Resource | resident memory, against the machine's | bytes |
//! | `ops_per_node` | Pods | commands it served a second | thousandths |
//! | `ops_per_prg` | Pods | operations a second per PRG it leads | thousandths |
//! | `bytes_per_prg` | Pods | bytes of rows per replica it hosts | thousandths |
//! | `p99_ms` | Object | the slowest node's 99th percentile | thousandths (µs) |
//! | `replication_lag` | Object | the farthest follower behind a leader | thousandths |

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::data::{LastChanges, TenantLoad};
use super::hpa::{NodeSample, Readiness};
use super::policy::Metric;
use super::recommend::Signals;
use crate::cluster::{ClusterState, NodeState};
use crate::ids::{NodeId, PrgId};
use crate::operation::OpPhase;

/// The load a node measured on itself over the interval before its
/// report. Rates are in thousandths a second; a figure the node cannot
/// measure (no `/proc`, no request in the interval) is `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeLoad {
    /// Client commands served a second, × 1000.
    pub ops_milli: u64,
    /// Operations a second each PRG this node leads executed, × 1000.
    pub prg_ops_milli: BTreeMap<PrgId, u64>,
    /// CPU time the process used a second, in millicores.
    pub cpu_millicores: Option<u64>,
    /// Cores the node may use.
    pub cores: u32,
    /// Resident memory of the process.
    pub rss_bytes: Option<u64>,
    /// Memory of the machine.
    pub memory_bytes: Option<u64>,
    /// Percentiles of the time a request took on this node's PRGs, µs.
    pub p50_us: Option<u64>,
    pub p95_us: Option<u64>,
    pub p99_us: Option<u64>,
    /// Client requests a second answered with an error of the cluster's
    /// making (a PRG unavailable, an outcome unknown), × 1000.
    pub errors_milli: u64,
    /// The most entries any follower of a PRG this node leads is behind.
    pub replication_lag: u64,
    /// Client connections open.
    pub connections: u64,
}

/// A node's report as the recommender reads it: its load, whether it
/// serves, and whether the report is recent enough to count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reported {
    pub load: NodeLoad,
    pub ready: bool,
    /// The report arrived within the health check's limit.
    pub fresh: bool,
    /// Bytes the node stores (its data directory).
    pub stored_bytes: u64,
    /// About how many bytes of rows its replicas hold.
    pub data_bytes: u64,
    /// About how many bytes of rows each PRG it leads holds.
    pub prg_bytes: BTreeMap<PrgId, u64>,
}

/// How a node counts: an Active node that reported recently is Ready or
/// NotReady as it says; one that did not has no figure (the HPA's missing
/// metric); a Draining node is on its way out.
fn readiness(state: NodeState, r: Option<&Reported>) -> (Readiness, Option<&Reported>) {
    if state == NodeState::Draining {
        return (Readiness::Gone, None);
    }
    match r {
        Some(r) if r.fresh && r.ready => (Readiness::Ready, Some(r)),
        Some(r) if r.fresh => (Readiness::NotReady, Some(r)),
        _ => (Readiness::Ready, None),
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Replicas each node hosts.
fn replicas_per_node(state: &ClusterState) -> BTreeMap<NodeId, u64> {
    let mut out = BTreeMap::new();
    for p in state.placements.values() {
        for m in &p.members {
            *out.entry(*m).or_default() += 1;
        }
    }
    out
}

/// A node's figure for a per-node metric (see the table above).
fn figure(metric: Metric, r: &Reported, replicas: u64) -> Option<(i64, i64)> {
    let l = &r.load;
    match metric {
        Metric::Cpu => l.cpu_millicores.map(|u| (to_i64(u), i64::from(l.cores) * 1000)),
        Metric::Memory => l.rss_bytes.zip(l.memory_bytes).map(|(u, c)| (to_i64(u), to_i64(c))),
        Metric::OpsPerNode => Some((to_i64(l.ops_milli), 0)),
        Metric::OpsPerPrg => {
            let led = l.prg_ops_milli.len().max(1) as u64;
            Some((to_i64(l.prg_ops_milli.values().sum::<u64>() / led), 0))
        }
        Metric::BytesPerPrg => Some((to_i64(r.data_bytes.saturating_mul(1000) / replicas.max(1)), 0)),
        Metric::P99Ms | Metric::ReplicationLag => None,
    }
}

/// When the cluster last changed, from the operations it ran: the last
/// scale-up that finished, the last scale-down or drain, and the last
/// operation that failed or rolled back, or that healed a lost node.
pub fn last_changes(state: &ClusterState) -> LastChanges {
    let mut last = LastChanges::default();
    let later = |slot: &mut Option<u64>, at: u64| *slot = Some(slot.map_or(at, |s| s.max(at)));
    for op in state.operations.values() {
        let Some(at) = op.finished_ms else { continue };
        match op.phase {
            OpPhase::Done if op.kind == "scale_out" => later(&mut last.scale_up_ms, at),
            OpPhase::Done if op.kind == "scale_in" || op.kind == "drain" => later(&mut last.scale_down_ms, at),
            OpPhase::Done if op.kind == "heal" => later(&mut last.failure_ms, at),
            OpPhase::Failed | OpPhase::RolledBack => later(&mut last.failure_ms, at),
            _ => {}
        }
    }
    last
}

/// The recommender's inputs at `now_ms` from the state and the nodes'
/// reports.
pub fn signals(state: &ClusterState, reports: &BTreeMap<NodeId, Reported>, now_ms: u64) -> Signals {
    let members: Vec<(NodeId, NodeState)> = state
        .nodes
        .values()
        .filter(|n| matches!(n.state, NodeState::Active | NodeState::Draining))
        .map(|n| (n.id, n.state))
        .collect();
    let active = members.iter().filter(|(_, s)| *s == NodeState::Active);
    let nodes = active.clone().count() as u32;
    let ready_nodes = active.filter(|(id, _)| reports.get(id).is_some_and(|r| r.fresh && r.ready)).count() as u32;
    let replicas = replicas_per_node(state);

    let mut samples: BTreeMap<Metric, Vec<NodeSample>> = BTreeMap::new();
    for metric in [Metric::Cpu, Metric::Memory, Metric::OpsPerNode, Metric::OpsPerPrg, Metric::BytesPerPrg] {
        let list = members
            .iter()
            .map(|(id, st)| {
                let (readiness, r) = readiness(*st, reports.get(id));
                let got = r.and_then(|r| figure(metric, r, replicas.get(id).copied().unwrap_or(0)));
                NodeSample { readiness, usage: got.map(|g| g.0), capacity: got.map_or(0, |g| g.1) }
            })
            .collect();
        samples.insert(metric, list);
    }

    let fresh: Vec<&Reported> = reports
        .iter()
        .filter(|(id, r)| r.fresh && state.nodes.get(id).is_some_and(|n| n.state == NodeState::Active))
        .map(|(_, r)| r)
        .collect();
    let mut cluster = BTreeMap::new();
    if let Some(p99) = fresh.iter().filter_map(|r| r.load.p99_us).max() {
        cluster.insert(Metric::P99Ms, to_i64(p99));
    }
    if !fresh.is_empty() {
        let lag = fresh.iter().map(|r| r.load.replication_lag).max().unwrap_or(0);
        cluster.insert(Metric::ReplicationLag, to_i64(lag.saturating_mul(1000)));
    }

    // Each PRG's figures from whoever leads it (a leader that changed
    // between reports may name it twice: the larger figure wins).
    let mut prg_ops: BTreeMap<&PrgId, u64> = BTreeMap::new();
    let mut prg_bytes: BTreeMap<&PrgId, u64> = BTreeMap::new();
    for r in reports.values().filter(|r| r.fresh) {
        for (p, v) in &r.load.prg_ops_milli {
            let e = prg_ops.entry(p).or_default();
            *e = (*e).max(*v);
        }
        for (p, v) in &r.prg_bytes {
            let e = prg_bytes.entry(p).or_default();
            *e = (*e).max(*v);
        }
    }
    let mut tenants: BTreeMap<String, TenantLoad> =
        state.tenants.keys().map(|t| (t.clone(), TenantLoad::default())).collect();
    for prg in state.placements.keys() {
        let Some(t) = tenants.get_mut(&prg.tenant) else { continue };
        t.prgs += 1;
        t.ops += prg_ops.get(prg).copied().unwrap_or(0) as f64 / 1000.0;
        t.bytes += prg_bytes.get(prg).copied().unwrap_or(0);
    }
    let data_bytes = tenants.values().map(|t| t.bytes).sum();
    let node_memory = fresh.iter().filter_map(|r| r.load.memory_bytes).min().unwrap_or(0);
    Signals {
        now_ms,
        nodes,
        ready_nodes,
        samples,
        cluster,
        tenants,
        data_bytes,
        node_memory,
        last: last_changes(state),
        forecast: None,
    }
}

#[cfg(test)]
#[path = "signals_tests.rs"]
mod tests;
