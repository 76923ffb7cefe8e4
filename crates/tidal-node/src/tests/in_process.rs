//! Three nodes in one process, on port 0, driven through the router. Waits
//! are on conditions with deadlines.

use std::time::Duration;

use crate::admin::readiness;
use crate::forward::KvRequest;
use crate::{Node, RawConfig};
use tidal_control::{CpCommand, CpError};
use tidal_core::kv::{ReadOp, Reply, WriteOp};

use super::common::Dir;

async fn wait_until<F: FnMut() -> bool>(timeout: Duration, what: &str, mut f: F) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

struct TestCluster {
    nodes: Vec<Option<Node>>,
    _dirs: Vec<Dir>,
}

async fn start(extra: impl Fn(&mut RawConfig)) -> TestCluster {
    let (nodes, dirs) = super::common::three_nodes("tidal-inproc", extra).await;
    TestCluster { nodes: nodes.into_iter().map(Some).collect(), _dirs: dirs }
}

impl TestCluster {
    fn node(&self, i: usize) -> &Node {
        self.nodes[i].as_ref().unwrap()
    }

    async fn all_ready(&self) {
        for i in 0..3 {
            if let Some(n) = &self.nodes[i] {
                let s = n.shared.clone();
                wait_until(Duration::from_secs(30), "node ready", || readiness(&s).ready).await;
            }
        }
    }

    async fn stop(&mut self, i: usize) {
        if let Some(n) = self.nodes[i].take() {
            n.stop().await;
        }
    }
}

/// `write_many` from every node (so batches reach remote leaders): replies
/// in order, and every write sees the ones before it, across a multi-PRG
/// barrier.
async fn pipelined_writes_keep_their_order(c: &TestCluster) {
    for node in 0..3 {
        let s = c.node(node).shared.clone();
        let keys: Vec<Vec<u8>> = (0..10).map(|i| format!("pipe{node}-{i}").into_bytes()).collect();
        let mut ops = Vec::new();
        let mut want = Vec::new();
        for k in &keys {
            ops.push(WriteOp::IncrBy { key: k.clone(), delta: 5 });
            want.push(Reply::Int(5));
        }
        for k in &keys {
            ops.push(WriteOp::IncrBy { key: k.clone(), delta: 1 });
            want.push(Reply::Int(6));
        }
        // Spans PRGs: runs alone, after everything above.
        ops.push(WriteOp::Del { keys: keys.clone() });
        want.push(Reply::Int(keys.len() as i64));
        for k in &keys {
            ops.push(WriteOp::IncrBy { key: k.clone(), delta: 2 });
            want.push(Reply::Int(2));
        }
        assert_eq!(s.write_many("default", ops).await, want, "through node {}", node + 1);
        for k in &keys {
            assert_eq!(s.read("default", ReadOp::Get { key: k.clone() }).await, Reply::Bulk(b"2".to_vec()));
        }
        assert_eq!(s.write("default", WriteOp::Del { keys }).await, Reply::Int(10));
    }
}

/// A pipeline of large writes to one PRG, more bytes in all than a peer
/// frame may carry: it goes in several entries, every write applies, and
/// the PRG keeps serving (one entry that large would never replicate).
async fn a_large_pipeline_to_one_prg_applies_and_the_prg_keeps_serving(c: &TestCluster) {
    const VALUE: usize = 13 << 20;
    for node in [0, 2] {
        let s = c.node(node).shared.clone();
        let mut keys: Vec<String> = (0..5).map(|i| format!("{{big}}{node}-{i}")).collect();
        let ops = keys.iter().map(|k| WriteOp::set(k.clone(), vec![b'x'; VALUE])).collect();
        assert_eq!(s.write_many("default", ops).await, vec![Reply::Ok; 5], "through node {}", node + 1);
        assert_eq!(s.write("default", WriteOp::set(format!("{{big}}after{node}"), "v")).await, Reply::Ok);
        for k in &keys {
            let got = s.read("default", ReadOp::Strlen { key: k.clone().into_bytes() }).await;
            assert_eq!(got, Reply::Int(VALUE as i64), "{k}");
        }
        keys.push(format!("{{big}}after{node}"));
        assert_eq!(
            s.write("default", WriteOp::Del { keys: keys.into_iter().map(String::into_bytes).collect() }).await,
            Reply::Int(6)
        );
    }
}

/// A proposal made as the control-plane leader is never relayed: on a node
/// that does not lead it answers NotLeader and changes nothing, where a
/// relayed proposal of the same command goes through the leader.
async fn only_the_leader_proposes_as_leader(c: &TestCluster) {
    let cp = |i: usize| c.node(i).shared.cp.clone();
    let leader = (0..3).find(|i| cp(*i).is_local_leader()).expect("a control-plane leader");
    let follower = (leader + 1) % 3;
    let tenant = |name: &str| CpCommand::CreateTenant { name: name.into(), slots: 16, prgs: 1 };
    let has = |name: &str| cp(leader).local_machine().is_some_and(|m| m.state().tenants.contains_key(name));

    match cp(follower).propose_as_leader(tenant("not-relayed")).await {
        Err(CpError::NotLeader) => {}
        other => panic!("a follower's proposal as leader: {other:?}"),
    }
    // Anything the follower's call had appended would be committed by now.
    cp(follower).propose(tenant("relayed")).await.unwrap();
    assert!(has("relayed"));
    assert!(!has("not-relayed"), "a follower's proposal as leader reached the leader");

    cp(leader).propose_as_leader(tenant("led")).await.unwrap();
    assert!(has("led"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_survive_a_stopped_node_and_route_from_any_node() {
    let mut c = start(|_| {}).await;
    c.all_ready().await;
    only_the_leader_proposes_as_leader(&c).await;
    for i in 0..100 {
        let node = c.node(i % 3).shared.clone();
        assert_eq!(node.write("default", WriteOp::set(format!("k{i}"), format!("v{i}"))).await, Reply::Ok);
    }
    pipelined_writes_keep_their_order(&c).await;
    a_large_pipeline_to_one_prg_applies_and_the_prg_keeps_serving(&c).await;
    c.stop(0).await;
    let s = c.node(1).shared.clone();
    for i in 100..150 {
        assert_eq!(s.write("default", WriteOp::set(format!("k{i}"), format!("v{i}"))).await, Reply::Ok);
    }
    let r = c.node(2).shared.clone();
    for i in 0..150 {
        let got = r.read("default", ReadOp::Get { key: format!("k{i}").into_bytes() }).await;
        assert_eq!(got, Reply::Bulk(format!("v{i}").into_bytes()));
    }
    let sizes = r.broadcast("default", KvRequest::Read(ReadOp::DbSize)).await.unwrap();
    assert_eq!(sizes.len(), 4);
    let total: i64 = sizes.iter().map(|x| if let Reply::Int(n) = x { *n } else { panic!("{x:?}") }).sum();
    assert_eq!(total, 150);
    c.stop(1).await;
    c.stop(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_isolated_node_enters_strict_fallback_and_reports_not_ready() {
    let mut c = start(|r| {
        r.cache_fresh_ms = Some(300);
        r.cache_cached_ms = Some(600);
        r.cache_stale_ms = Some(900);
        r.cache_sync_ms = Some(100);
        r.retry_budget_ms = Some(1500);
    })
    .await;
    c.all_ready().await;
    let s = c.node(0).shared.clone();
    assert_eq!(s.write("default", WriteOp::set("before", "x")).await, Reply::Ok);
    // Without two of three nodes the control plane has no quorum: node 1's
    // cache ages out.
    c.stop(1).await;
    c.stop(2).await;
    wait_until(Duration::from_secs(10), "strict fallback", || s.cache.strict_fallback(tokio::time::Instant::now()))
        .await;
    let r = readiness(&s);
    assert!(!r.ready);
    assert!(r.reasons.iter().any(|w| w.contains("strict fallback")), "{:?}", r.reasons);
    // A write gets a clear error, never a silent success: refused, or
    // proposed by a leader that can no longer commit (outcome unknown).
    match s.write("default", WriteOp::set("after", "y")).await {
        Reply::Error(e) => {
            assert!(e.starts_with("CLUSTERDOWN") || e.starts_with("TRYAGAIN") || e.starts_with("UNCERTAIN"), "{e}")
        }
        other => panic!("expected an error, got {other:?}"),
    }
    c.stop(0).await;
}
