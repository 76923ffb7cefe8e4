use super::*;
use crate::autoscale::data::{Cooldowns, TenantLoad};
use crate::autoscale::hpa::Readiness;

const S: u64 = 1000;

fn policy(json: &str) -> Policy {
    let p: Policy = serde_json::from_str(json).expect("policy parses");
    p.validate().expect("policy validates");
    p
}

/// A policy holding CPU at 60 % with no windows and no cooldowns, so that
/// each decision follows the load at once.
fn cpu_policy() -> Policy {
    policy(
        r#"{"minNodes": 3, "maxNodes": 10,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}}],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}},
            "cooldowns": {"afterScaleUpSeconds": 0, "afterScaleDownSeconds": 0, "afterFailureSeconds": 0}}"#,
    )
}

fn cpu(nodes: u32, percent: i64) -> Signals {
    let sample = NodeSample { readiness: Readiness::Ready, usage: Some(percent * 20), capacity: 2000 };
    Signals {
        now_ms: 1_000_000 * S,
        nodes,
        ready_nodes: nodes,
        samples: [(Metric::Cpu, vec![sample; nodes as usize])].into(),
        ..Signals::default()
    }
}

#[test]
fn a_load_step_scales_up_and_explains_itself() {
    let p = cpu_policy();
    let mut h = Recommender::default();
    // 3 nodes at 90 % against 60 %: ceil(3 × 1.5) = 5.
    let d = recommend(&p, &cpu(3, 90), &mut h);
    assert_eq!((d.current, d.desired, d.nodes), (3, 5, 5));
    assert_eq!(d.asks.len(), 1);
    assert_eq!(d.asks[0].source, "metric cpu");
    assert!(d.asks[0].why.contains("90 % against 60 %: 5 nodes"), "{}", d.asks[0].why);
    assert_eq!(d.held, None);
    // Within the tolerance: nothing.
    let d = recommend(&p, &cpu(5, 63), &mut h);
    assert_eq!(d.nodes, 5);
}

#[test]
fn a_scale_down_waits_out_its_cooldown() {
    let mut p = cpu_policy();
    p.cooldowns = Cooldowns { after_scale_up_seconds: 600, ..p.cooldowns };
    let mut h = Recommender::default();
    let mut s = cpu(6, 20);
    s.last.scale_up_ms = Some(s.now_ms - 60 * S);
    let d = recommend(&p, &s, &mut h);
    // The metric asks for ceil(6 × 20/60) = 2, the minimum is 3; held at 6.
    assert_eq!((d.recommendation.nodes, d.nodes), (3, 6));
    assert!(d.held.as_deref().is_some_and(|w| w.contains("after a scale-up")), "{:?}", d.held);
    // Ten minutes after the scale-up, it may go.
    s.now_ms += 600 * S;
    assert_eq!(recommend(&p, &s, &mut h).nodes, 3);
}

#[test]
fn a_missing_metric_blocks_a_scale_down_but_not_a_scale_up() {
    let mut p = cpu_policy();
    p.metrics.extend(
        policy(
            r#"{"minNodes": 3, "maxNodes": 3, "metrics": [
                {"type": "Object", "object": {"metric": {"name": "p99_ms"}, "target": {"type": "Value", "value": 5}}}]}"#,
        )
        .metrics,
    );
    let mut h = Recommender::default();
    // CPU asks for fewer; p99 has no figure: stay.
    let d = recommend(&p, &cpu(6, 20), &mut h);
    assert_eq!((d.desired, d.nodes), (6, 6));
    assert_eq!(d.asks[1].nodes, None);
    // CPU asks for more: go.
    assert_eq!(recommend(&p, &cpu(4, 90), &mut h).nodes, 6);
    // With the p99 figure (12 ms against 5 on 4 ready nodes): ceil(4 × 2.4) = 10.
    let mut s = cpu(4, 60);
    s.cluster.insert(Metric::P99Ms, 12_000);
    assert_eq!(recommend(&p, &s, &mut h).desired, 10);
}

#[test]
fn the_data_sets_floors_and_tenants_get_their_prgs() {
    let p = policy(
        r#"{"minNodes": 3, "maxNodes": 20, "maxReplicasPerNode": 6, "maxDataFill": 0.5,
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}},
            "tenants": {"default": {"targetPerPrg": {"ops": 5000}}}}"#,
    );
    let mut h = Recommender::default();
    let s = Signals {
        now_ms: 1_000_000 * S,
        nodes: 3,
        ready_nodes: 3,
        tenants: [("default".to_string(), TenantLoad { ops: 42_000.0, bytes: 1 << 30, prgs: 4 })].into(),
        data_bytes: 10 << 30,
        node_memory: 8 << 30,
        ..Signals::default()
    };
    let d = recommend(&p, &s, &mut h);
    // 42 000 ops at 5 000 a PRG: 9 PRGs; 27 replicas, 6 a node: 5 nodes.
    assert_eq!(d.prgs["default"].prgs, 9);
    assert_eq!(d.asks[0].nodes, Some(5));
    // 10 GiB × 3 in 4 GiB a node: 8 nodes, the larger floor.
    assert_eq!(d.asks[1].nodes, Some(8));
    assert_eq!((d.desired, d.nodes), (8, 7), "the default scale-up policy adds at most 4 nodes from 3: 7");
    assert_eq!(d.recommendation.reason, crate::autoscale::hpa::Reason::ScaleUpLimit);
}

#[test]
fn a_prg_count_holds_within_the_tolerance_and_falls_only_after_the_window() {
    // The default scale-down window: 5 minutes.
    let p = policy(r#"{"minNodes": 3, "maxNodes": 10, "tenants": {"t": {"targetPerPrg": {"ops": 1000}}}}"#);
    let mut h = Recommender::default();
    let at = |secs: u64, ops: f64, prgs: u32| Signals {
        now_ms: secs * S,
        nodes: 3,
        ready_nodes: 3,
        tenants: [("t".to_string(), TenantLoad { ops, bytes: 0, prgs })].into(),
        ..Signals::default()
    };
    // 2 050 ops on 2 PRGs is within 10 % of 2 × 1000: no third PRG.
    let d = recommend(&p, &at(100, 2_050.0, 2), &mut h);
    assert_eq!(d.prgs["t"].prgs, 2, "{:?}", d.prgs);
    assert!(d.prgs["t"].why.contains("within the tolerance"), "{:?}", d.prgs);
    // 2 500: up at once.
    assert_eq!(recommend(&p, &at(110, 2_500.0, 2), &mut h).prgs["t"].prgs, 3);
    // Down to 900 on 3 PRGs: held at 3 until the window has seen nothing higher.
    let held = recommend(&p, &at(120, 900.0, 3), &mut h);
    assert_eq!(held.prgs["t"].prgs, 3, "{:?}", held.prgs);
    assert!(held.prgs["t"].why.contains("ScaleDownStabilized"), "{:?}", held.prgs);
    assert_eq!(recommend(&p, &at(200, 900.0, 3), &mut h).prgs["t"].prgs, 3);
    assert_eq!(recommend(&p, &at(420, 900.0, 3), &mut h).prgs["t"].prgs, 1);
}

#[test]
fn an_event_prescales_at_once_and_freezes_scale_down() {
    let start = crate::autoscale::schedule::parse_time("2027-01-10T09:00:00Z").unwrap();
    let mut p = cpu_policy();
    p.events.push(crate::autoscale::schedule::Event {
        name: "launch".into(),
        start: "2027-01-10T09:00:00Z".into(),
        end: "2027-01-10T18:00:00Z".into(),
        min_nodes: 6,
        prescale_seconds: 86_400,
        freeze_scale_down: true,
    });
    p.validate().unwrap();
    let mut h = Recommender::default();
    let at = |ms: u64, nodes: u32, percent: i64| Signals { now_ms: ms, ..cpu(nodes, percent) };
    // A day ahead, idle: straight to the event's minimum, as the HPA
    // goes straight to a raised minReplicas.
    let d = recommend(&p, &at(start - 23 * 3_600_000, 3, 10), &mut h);
    assert_eq!(d.nodes, 6, "{d:?}");
    assert!(d.asks.iter().any(|a| a.source == "minimum" && a.why.contains("event launch")), "{:?}", d.asks);
    // During it, a load that asks for more gets more…
    assert_eq!(recommend(&p, &at(start + 3_600_000, 6, 90), &mut h).nodes, 9);
    // …and when it drops, nothing goes below what it reached until the end.
    let d = recommend(&p, &at(start + 2 * 3_600_000, 9, 10), &mut h);
    assert_eq!(d.nodes, 9, "{d:?}");
    assert!(d.held.as_deref().is_some_and(|h| h.contains("freezes scale-down")), "{d:?}");
    // After it, the policy's own minimum again.
    assert_eq!(recommend(&p, &at(start + 10 * 3_600_000, 9, 10), &mut h).nodes, 3);
}
