use super::*;
use crate::cluster::{NodeInfo, Placement, Tenant};
use crate::operation::{Budget, Operation};
use crate::planner::scale::ScalePlan;

fn node(id: NodeId, state: NodeState) -> NodeInfo {
    NodeInfo {
        id,
        peer_addr: String::new(),
        client_addr: String::new(),
        http_addr: String::new(),
        zone: String::new(),
        state,
    }
}

/// Nodes 1–4 (4 Draining), tenant `a` with PRGs on 1–3 and tenant `b`
/// with one PRG on 2–4.
fn cluster() -> ClusterState {
    let mut s = ClusterState::default();
    for id in 1..=3 {
        s.nodes.insert(id, node(id, NodeState::Active));
    }
    s.nodes.insert(4, node(4, NodeState::Draining));
    s.tenants.insert("a".into(), Tenant::new("a", 64, 2));
    s.tenants.insert("b".into(), Tenant::new("b", 64, 1));
    for i in 0..2 {
        let prg = PrgId::new("a", i);
        s.placements.insert(prg.clone(), Placement::new(prg, vec![1, 2, 3], 1, Vec::new()));
    }
    let prg = PrgId::new("b", 0);
    s.placements.insert(prg.clone(), Placement::new(prg, vec![2, 3, 4], 1, Vec::new()));
    s
}

fn report(ready: bool, fresh: bool, cpu: u64, ops: u64) -> Reported {
    Reported {
        load: NodeLoad {
            ops_milli: ops,
            cpu_millicores: Some(cpu),
            cores: 2,
            rss_bytes: Some(1 << 30),
            memory_bytes: Some(8 << 30),
            ..NodeLoad::default()
        },
        ready,
        fresh,
        stored_bytes: 30_000,
        data_bytes: 3_000,
        prg_bytes: BTreeMap::new(),
    }
}

fn usages(s: &Signals, m: Metric) -> Vec<(Readiness, Option<i64>)> {
    s.samples[&m].iter().map(|x| (x.readiness, x.usage)).collect()
}

#[test]
fn nodes_count_as_the_hpa_counts_pods() {
    let state = cluster();
    let mut reports = BTreeMap::new();
    reports.insert(1, report(true, true, 1500, 40_000));
    reports.insert(2, report(false, true, 300, 0));
    // Node 3's report is too old to count: no figure (the HPA's missing metric).
    reports.insert(3, report(true, false, 900, 9_000));
    reports.insert(4, report(true, true, 100, 1_000));
    let s = signals(&state, &reports, 1_000);
    assert_eq!((s.nodes, s.ready_nodes), (3, 1));
    assert_eq!(
        usages(&s, Metric::Cpu),
        vec![
            (Readiness::Ready, Some(1500)),
            (Readiness::NotReady, Some(300)),
            (Readiness::Ready, None),
            (Readiness::Gone, None),
        ]
    );
    // CPU is a utilization of the node's cores.
    assert!(s.samples[&Metric::Cpu].iter().take(2).all(|x| x.capacity == 2000));
    assert_eq!(usages(&s, Metric::OpsPerNode)[0], (Readiness::Ready, Some(40_000)));
    // Bytes per PRG: 3 000 bytes of rows (not the 30 000 its files take)
    // over node 1's 2 replicas, in thousandths.
    assert_eq!(usages(&s, Metric::BytesPerPrg)[0].1, Some(1_500_000));
    assert_eq!(s.node_memory, 8 << 30);
}

#[test]
fn tenants_load_comes_from_their_leaders() {
    let state = cluster();
    let mut reports = BTreeMap::new();
    let mut one = report(true, true, 0, 0);
    one.load.prg_ops_milli.insert(PrgId::new("a", 0), 2_500_000);
    one.load.prg_ops_milli.insert(PrgId::new("b", 0), 500_000);
    one.prg_bytes.insert(PrgId::new("a", 0), 10_000);
    one.load.p99_us = Some(1_200);
    one.load.replication_lag = 7;
    let mut two = report(true, true, 0, 0);
    two.load.prg_ops_milli.insert(PrgId::new("a", 1), 1_500_000);
    two.prg_bytes.insert(PrgId::new("a", 1), 5_000);
    two.load.p99_us = Some(4_800);
    reports.insert(1, one);
    reports.insert(2, two);
    let s = signals(&state, &reports, 1_000);
    let a = s.tenants["a"];
    assert_eq!((a.prgs, a.ops, a.bytes), (2, 4_000.0, 15_000));
    assert_eq!((s.tenants["b"].prgs, s.tenants["b"].ops), (1, 500.0));
    assert_eq!(s.data_bytes, 15_000);
    // The slowest node's p99, in µs; the farthest lag, in thousandths.
    assert_eq!(s.cluster[&Metric::P99Ms], 4_800);
    assert_eq!(s.cluster[&Metric::ReplicationLag], 7_000);
    // Node 1 leads two PRGs at 3 000 ops a second together: 1 500 each.
    assert_eq!(usages(&s, Metric::OpsPerPrg)[0].1, Some(1_500_000));
}

#[test]
fn no_reports_give_no_cluster_figures() {
    let s = signals(&cluster(), &BTreeMap::new(), 1_000);
    assert!(s.cluster.is_empty());
    assert!(s.samples[&Metric::Cpu].iter().take(3).all(|x| x.usage.is_none()));
    assert_eq!(s.ready_nodes, 0);
}

#[test]
fn the_last_changes_come_from_finished_operations() {
    let mut state = cluster();
    let op = |id: u64, kind: &str, phase: OpPhase, at: u64| {
        let mut o = Operation::new(kind, ScalePlan::default(), Budget::default(), 1000, 1000);
        o.id = id;
        o.phase = phase;
        o.finished_ms = Some(at);
        o
    };
    state.operations.insert(1, op(1, "scale_out", OpPhase::Done, 100));
    state.operations.insert(2, op(2, "scale_out", OpPhase::Done, 300));
    state.operations.insert(3, op(3, "scale_in", OpPhase::Done, 200));
    state.operations.insert(4, op(4, "scale_out", OpPhase::RolledBack, 250));
    state.operations.insert(5, op(5, "heal", OpPhase::Done, 150));
    let last = last_changes(&state);
    assert_eq!(last, LastChanges { scale_up_ms: Some(300), scale_down_ms: Some(200), failure_ms: Some(250) });
}
