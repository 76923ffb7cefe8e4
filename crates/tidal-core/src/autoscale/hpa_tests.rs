//! The recommender against the HPA's own cases (ported from the Kubernetes
//! HPA controller's tests, `replica_calculator_test.go` and
//! `horizontal_test.go`, as inputs and expected outputs), and against
//! cases of tidal's own.

// The case tables are tuples, one column per input, as the HPA's tables.
#![allow(clippy::type_complexity)]

use super::*;
use crate::autoscale::policy::{Behavior, ScalingPolicy};

const S: u64 = 1000;

fn rules(window_s: u32, select: SelectPolicy, policies: &[(ScalingPolicyKind, u32, u32)]) -> ScalingRules {
    ScalingRules {
        stabilization_window_seconds: Some(window_s),
        select_policy: Some(select),
        policies: policies
            .iter()
            .map(|&(kind, value, period_seconds)| ScalingPolicy { kind, value, period_seconds })
            .collect(),
    }
}

fn policy(min: u32, max: u32, up: Option<ScalingRules>, down: Option<ScalingRules>) -> Policy {
    Policy {
        min_nodes: min,
        max_nodes: max,
        metrics: Vec::new(),
        behavior: Behavior { scale_up: up, scale_down: down },
        tolerance: 0.1,
        tenants: Default::default(),
        auto_arm: false,
        max_replicas_per_node: None,
        max_data_fill: None,
        cooldowns: Default::default(),
        events: Vec::new(),
        schedules: Vec::new(),
        forecast: None,
        indicators: Default::default(),
    }
}

fn ready(usage: i64, capacity: i64) -> NodeSample {
    NodeSample { readiness: Readiness::Ready, usage: Some(usage), capacity }
}

fn events(now_ms: u64, list: &[(u32, u64)]) -> Vec<ScaleEvent> {
    list.iter().map(|&(change, ago_s)| ScaleEvent { at_ms: now_ms - ago_s * S, change, outdated: false }).collect()
}

use ScalingPolicyKind::{Percent, Pods};

#[test]
fn utilization_scales_in_proportion_and_not_within_the_tolerance() {
    // 3 nodes at 80 % of 1000 against a 50 % target: ceil(3 × 1.6) = 5.
    let s = [ready(800, 1000), ready(800, 1000), ready(800, 1000)];
    assert_eq!(resource_nodes(3, &s, 50, 0.1, true), Ok(MetricAsk { nodes: 5, current: 80 }));
    // 3 nodes at 52 % against 50 %: within 10 %, stay.
    let s = [ready(520, 1000), ready(520, 1000), ready(520, 1000)];
    assert_eq!(resource_nodes(3, &s, 50, 0.1, true).unwrap().nodes, 3);
    // Down: 5 nodes at 20 % against 50 %: ceil(5 × 0.4) = 2.
    let s = [ready(200, 1000); 5];
    assert_eq!(resource_nodes(5, &s, 50, 0.1, true).unwrap().nodes, 2);
    // Nothing reported: no ask.
    let s = [NodeSample { readiness: Readiness::Ready, usage: None, capacity: 1000 }];
    assert_eq!(resource_nodes(1, &s, 50, 0.1, true), Err(MetricError::NoMetrics));
}

#[test]
fn missing_and_unready_nodes_damp_the_change() {
    // Scale-up with a node that said nothing: it counts as idle.
    // Ready: 2 × 90 %; missing: 1 → ratio over 3 = (900+900+0)/3000 = 60 % → 1.2 → ceil(3.6) = 4.
    let s =
        [ready(900, 1000), ready(900, 1000), NodeSample { readiness: Readiness::Ready, usage: None, capacity: 1000 }];
    assert_eq!(resource_nodes(3, &s, 50, 0.1, true).unwrap().nodes, 4);
    // Scale-down with a missing node: it counts as fully busy. Ready: 2 ×
    // 10 %; with the missing one at 100 %: 40 % against 50 %, 0.8, and
    // ceil(3 × 0.8) = 3: no fewer nodes.
    let s =
        [ready(100, 1000), ready(100, 1000), NodeSample { readiness: Readiness::Ready, usage: None, capacity: 1000 }];
    assert_eq!(resource_nodes(3, &s, 50, 0.1, true).unwrap().nodes, 3);
    // Scale-up with an unready node (CPU): it counts as idle.
    let pending = NodeSample { readiness: Readiness::Pending, usage: None, capacity: 1000 };
    let s = [ready(1000, 1000), ready(1000, 1000), pending];
    // first pass 100 % vs 50 %: 2.0; second (1000+1000+0)/3000 = 66 % → 1.33 → ceil(4) = 4.
    assert_eq!(resource_nodes(3, &s, 50, 0.1, true).unwrap().nodes, 4);
    // A leaving node does not count at all.
    let gone = NodeSample { readiness: Readiness::Gone, usage: Some(0), capacity: 1000 };
    let s = [ready(1000, 1000), ready(1000, 1000), gone];
    assert_eq!(resource_nodes(3, &s, 50, 0.1, true).unwrap().nodes, 4);
}

#[test]
fn averages_and_objects() {
    // 4 nodes at 15 000 ops/s against 10 000 per node: ceil(4 × 1.5) = 6.
    let s = [ready(15_000, 0); 4];
    assert_eq!(average_nodes(4, &s, 10_000, 0.1, false), Ok(MetricAsk { nodes: 6, current: 15_000 }));
    // p99 of 12 ms against 5 ms on 3 ready nodes: ceil(3 × 2.4) = 8.
    assert_eq!(object_nodes(3, 3, 12, 5, 0.1).nodes, 8);
    assert_eq!(object_nodes(3, 3, 5, 5, 0.1).nodes, 3);
    // 90 000 ops/s over the cluster, 20 000 per node: 5 nodes.
    assert_eq!(object_average_nodes(3, 90_000, 20_000, 0.1), MetricAsk { nodes: 5, current: 30_000 });
}

#[test]
fn the_up_window_takes_the_least_and_the_down_window_the_most() {
    let p = policy(
        3,
        20,
        Some(rules(60, SelectPolicy::Max, &[(Pods, 100, 15)])),
        Some(rules(300, SelectPolicy::Max, &[(Percent, 100, 15)])),
    );
    let now = 10_000 * S;
    let mut r = Recommender {
        recommendations: vec![
            Recorded { at_ms: now - 30 * S, nodes: 6 },
            Recorded { at_ms: now - 200 * S, nodes: 9 },
            Recorded { at_ms: now - 400 * S, nodes: 15 },
        ],
        ..Default::default()
    };
    // Up to 10 from 5: the least within 60 s is 6.
    let rec = r.normalize(now, &p, 5, 10);
    assert_eq!((rec.stabilized, rec.nodes, rec.stabilization), (6, 6, Reason::ScaleUpStabilized));
    // The 400 s-old slot (past both windows) was reused for the 10.
    assert_eq!(r.recommendations.len(), 3);
    // Down to 4 from 8: the most within 300 s is 10 (just recorded).
    let rec = r.normalize(now + S, &p, 8, 4);
    assert_eq!((rec.stabilized, rec.stabilization), (8, Reason::ScaleDownStabilized));
}

#[test]
fn a_fresh_recommender_waits_a_whole_down_window() {
    let p = policy(3, 20, None, None);
    let mut r = Recommender::default();
    let t0 = 1_000_000 * S;
    // The metrics ask for 3 of 8 at once: held at 8 (default down window 300 s).
    assert_eq!(r.normalize(t0, &p, 8, 3).nodes, 8);
    assert_eq!(r.normalize(t0 + 299 * S, &p, 8, 3).nodes, 8);
    // 301 s on, every recommendation within the window says 3.
    assert_eq!(r.normalize(t0 + 301 * S, &p, 8, 3).nodes, 3);
}

#[test]
fn scaling_policies_limit_the_rate() {
    let now = 100_000 * S;
    // Default up rules: max(4 nodes, 100 %) per 15 s: from 3, at most 7.
    let up = Behavior::default().up();
    assert_eq!(scale_up_limit(now, 3, &[], &[], &up), 7);
    // From 10: 100 % → 20.
    assert_eq!(scale_up_limit(now, 10, &[], &[], &up), 20);
    // Min picks the smaller: 14.
    let min = rules(0, SelectPolicy::Min, &[(Pods, 4, 15), (Percent, 100, 15)]);
    assert_eq!(scale_up_limit(now, 10, &[], &[], &min), 14);
    // 2 nodes added 10 s ago count against a 15 s period (from 10, the period started at 8).
    let ups = events(now, &[(2, 10)]);
    assert_eq!(scale_up_limit(now, 10, &ups, &[], &rules(0, SelectPolicy::Max, &[(Pods, 4, 15)])), 12);
    // ...but not against a 5 s one.
    assert_eq!(scale_up_limit(now, 10, &ups, &[], &rules(0, SelectPolicy::Max, &[(Pods, 4, 5)])), 14);
    // Percent rounds up on the way up (3 × 1.1 = 3.3 → 4) and down on the way down (9 × 0.5 = 4.5 → 4).
    assert_eq!(scale_up_limit(now, 3, &[], &[], &rules(0, SelectPolicy::Max, &[(Percent, 10, 60)])), 4);
    assert_eq!(scale_down_limit(now, 9, &[], &[], &rules(0, SelectPolicy::Max, &[(Percent, 50, 60)])), 4);
    // Disabled: no change either way.
    let off = rules(0, SelectPolicy::Disabled, &[(Pods, 4, 15)]);
    assert_eq!(scale_up_limit(now, 5, &[], &[], &off), 5);
    assert_eq!(scale_down_limit(now, 5, &[], &[], &off), 5);
}

#[test]
fn bounds_hold_and_say_why() {
    let now = 50_000 * S;
    let p = policy(
        3,
        6,
        Some(rules(0, SelectPolicy::Max, &[(Pods, 10, 15)])),
        Some(rules(0, SelectPolicy::Max, &[(Pods, 1, 60)])),
    );
    let mut r = Recommender::default();
    let rec = r.normalize(now, &p, 4, 9);
    assert_eq!((rec.nodes, rec.reason), (6, Reason::TooManyReplicas));
    // Down one node a minute.
    let rec = r.normalize(now + 10 * S, &p, 6, 3);
    assert_eq!((rec.nodes, rec.reason), (5, Reason::ScaleDownLimit));
    r.record_scale(now + 10 * S, &p, 6, 5);
    let rec = r.normalize(now + 20 * S, &p, 5, 3);
    // The period started at 6: 6 − 1 = 5, no lower yet.
    assert_eq!((rec.nodes, rec.reason), (5, Reason::ScaleDownLimit));
    let rec = r.normalize(now + 80 * S, &p, 5, 3);
    assert_eq!(rec.nodes, 4);
    // A policy changed under a cluster now too large: straight to the maximum.
    let rec = r.normalize(now + 90 * S, &p, 9, 9);
    assert_eq!((rec.nodes, rec.reason), (6, Reason::TooManyReplicas));
}

// ---------------------------------------------------------------------------
// Ported from the Kubernetes HPA controller's tests. "pods" are nodes; a
// pod of the replica calculator's tests has two containers, each with the
// request and the level given, so a node here carries twice each.
// Not ported, because they test what tidal has no counterpart of:
// - replica_calculator_test.go: TestReplicaCalcSuperfluousMetrics and
//   TestReplicaCalcDisjointResourcesMetrics (metrics for pods that do not
//   exist: a node's figures come with the node), TestReplicaCalcEmptyCPURequest
//   (a node always has a capacity), the container-metric subtests (a node
//   has no containers), the External-metric cases (tidal reads its own
//   figures), the overflow cases (counts are u32 and saturate), and the
//   per-direction tolerance cases (the HPAConfigurableTolerance gate; a
//   policy has one tolerance);
// - horizontal_test.go: TestNormalizeDesiredReplicas and
//   TestConvertDesiredReplicasWithRules (the path for an HPA without
//   `behavior`: a tidal policy always has one, defaulted), and the
//   whole-controller cases (API objects, conditions, events).
// ---------------------------------------------------------------------------

/// A node of the replica calculator's tests: two containers of `request`
/// each, at `level` each when it reported.
fn pod(readiness: Readiness, request: i64, level: Option<i64>) -> NodeSample {
    NodeSample { readiness, usage: level.map(|l| 2 * l), capacity: 2 * request }
}

use Readiness::{Gone, NotReady, Pending, Ready as R};

#[test]
fn hpa_replica_calc_resource_cases() {
    let r = |level| pod(R, 1000, Some(level));
    let u = |level| pod(NotReady, 1000, Some(level));
    let missing = pod(R, 1000, None);
    // (test, current, nodes, target %, expected nodes, expected utilization)
    let cases: Vec<(&str, u32, Vec<NodeSample>, u32, u32, i64)> = vec![
        ("ScaleUp", 3, vec![r(300), r(500), r(700)], 30, 5, 50),
        ("ScaleUpUnreadyLessScale", 3, vec![u(300), r(500), r(700)], 30, 4, 60),
        ("ScaleUpHotCpuLessScale", 3, vec![u(300), r(500), r(700)], 30, 4, 60),
        ("ScaleUpUnreadyNoScale", 3, vec![r(400), u(500), u(700)], 30, 3, 40),
        ("ScaleHotCpuNoScale", 3, vec![r(400), u(500), u(700)], 30, 3, 40),
        ("ScaleUpIgnoresFailedPods", 2, vec![r(500), r(700), pod(Gone, 1000, None), pod(Gone, 1000, None)], 30, 4, 60),
        ("ScaleDown", 5, vec![r(100), r(300), r(500), r(250), r(250)], 50, 3, 28),
        ("ScaleDownIncludeUnreadyPods", 5, vec![r(100), r(300), r(500), u(250), u(250)], 50, 2, 30),
        (
            "ScaleDownExcludeUnscheduledPods",
            5,
            vec![
                r(100),
                pod(Pending, 1000, None),
                pod(Pending, 1000, None),
                pod(Pending, 1000, None),
                pod(Pending, 1000, None),
            ],
            50,
            1,
            10,
        ),
        ("ScaleDownIgnoreHotCpuPods", 5, vec![r(100), r(300), r(500), u(250), u(250)], 50, 2, 30),
        (
            "ScaleDownIgnoresFailedPods",
            5,
            vec![r(100), r(300), r(500), r(250), r(250), pod(Gone, 1000, None), pod(Gone, 1000, None)],
            50,
            3,
            28,
        ),
        (
            "Tolerance",
            3,
            vec![pod(R, 900, Some(1010)), pod(R, 1000, Some(1030)), pod(R, 1100, Some(1020))],
            100,
            3,
            102,
        ),
        ("MissingMetrics", 4, vec![r(400), r(95), missing, missing], 100, 3, 24),
        ("MissingMetricsNoChangeEq", 2, vec![r(1000), missing], 100, 2, 100),
        ("MissingMetricsNoChangeGt", 2, vec![r(1900), missing], 100, 2, 190),
        ("MissingMetricsNoChangeLt", 2, vec![r(600), missing], 100, 2, 60),
        ("MissingMetricsUnreadyChange", 3, vec![u(100), r(450), missing], 50, 3, 45),
        ("MissingMetricsHotCpuNoChange", 3, vec![u(100), r(450), missing], 50, 3, 45),
        ("MissingMetricsUnreadyScaleUp", 3, vec![u(100), r(2000), missing], 50, 4, 200),
        ("MissingMetricsHotCpuScaleUp", 3, vec![u(100), r(2000), missing], 50, 4, 200),
        ("MissingMetricsUnreadyScaleDown", 4, vec![u(100), r(100), r(100), missing], 50, 3, 10),
        (
            "MissingMetricsScaleDownTargetOver100",
            4,
            vec![pod(NotReady, 1000, Some(200)), pod(R, 1000, Some(100)), pod(R, 2000, Some(100)), pod(R, 2000, None)],
            300,
            2,
            6,
        ),
        ("DuringRollingUpdateWithMaxSurge", 2, vec![r(100), r(100), missing], 50, 2, 10),
    ];
    for (name, current, nodes, target, nodes_want, utilization) in cases {
        let got = resource_nodes(current, &nodes, target, 0.1, true);
        assert_eq!(got, Ok(MetricAsk { nodes: nodes_want, current: utilization }), "TestReplicaCalc{name}");
    }
    // ComputedToleranceAlgImplementation: 10 nodes at 50 % against 56 %
    // and 55 % (the second is within the tolerance).
    let requests = [400, 200, 310, 290, 302, 298, 301, 299, 300, 300];
    let nodes: Vec<NodeSample> = requests.iter().map(|&q| pod(R, q, Some(150))).collect();
    assert_eq!(resource_nodes(10, &nodes, 56, 0.1, true).unwrap().nodes, 9);
    assert_eq!(resource_nodes(10, &nodes, 55, 0.1, true).unwrap().nodes, 10);
    // EmptyMetrics: nothing reported, no ask.
    assert_eq!(resource_nodes(4, &[missing, missing, missing], 100, 0.1, true), Err(MetricError::NoMetrics));
}

#[test]
fn hpa_replica_calc_plain_and_object_cases() {
    let p = |level| NodeSample { readiness: R, usage: Some(level), capacity: 0 };
    let hot = |level| NodeSample { readiness: NotReady, usage: Some(level), capacity: 0 };
    let missing = NodeSample { readiness: R, usage: None, capacity: 0 };
    // Pods metrics: readiness is not checked.
    let cases: Vec<(&str, u32, Vec<NodeSample>, i64, u32, i64)> = vec![
        ("ScaleUpCM", 3, vec![p(20000), p(10000), p(30000)], 15000, 4, 20000),
        ("ScaleUpCMUnreadyHotCpuNoLessScale", 3, vec![p(50000), p(10000), hot(30000)], 15000, 6, 30000),
        ("ScaleUpCMUnreadyHotCpuScaleWouldScaleDown", 3, vec![hot(50000), p(15000), hot(30000)], 15000, 7, 31666),
        ("ScaleDownCM", 5, vec![p(12000); 5], 20000, 3, 12000),
        ("ToleranceCM", 3, vec![p(20000), p(21000), p(21000)], 20000, 3, 20666),
        (
            "PlainMetricMissingMetricsNoChangeEq",
            5,
            vec![p(20000), p(19000), p(21000), missing, missing],
            20000,
            5,
            20000,
        ),
        ("DuringRollingUpdateWithMaxSurgeCM", 2, vec![p(10000), p(10000), missing], 17000, 2, 10000),
    ];
    for (name, current, nodes, target, want, usage) in cases {
        assert_eq!(
            average_nodes(current, &nodes, target, 0.1, false),
            Ok(MetricAsk { nodes: want, current: usage }),
            "TestReplicaCalc{name}"
        );
    }
    // Object metrics with a value: the multiplier is the ready nodes.
    assert_eq!(object_nodes(3, 3, 20000, 15000, 0.1).nodes, 4, "ScaleUpCMObject");
    assert_eq!(object_nodes(3, 1, 50000, 10000, 0.1).nodes, 5, "ScaleUpCMObjectIgnoresUnreadyPods");
    assert_eq!(object_nodes(5, 5, 12000, 20000, 0.1).nodes, 3, "ScaleDownCMObject");
    assert_eq!(object_nodes(3, 3, 20666, 20000, 0.1).nodes, 3, "ToleranceCMObject");
    // ... and with an average per node.
    assert_eq!(
        object_average_nodes(3, 20000, 5000, 0.1),
        MetricAsk { nodes: 4, current: 6667 },
        "ScaleUpCMPerPodObject"
    );
    assert_eq!(
        object_average_nodes(5, 6000, 2000, 0.1),
        MetricAsk { nodes: 3, current: 1200 },
        "ScaleDownPerPodCMObject"
    );
    assert_eq!(
        object_average_nodes(4, 20166, 5000, 0.1),
        MetricAsk { nodes: 4, current: 5042 },
        "TolerancePerPodCMObject"
    );
}

#[test]
fn hpa_controller_tolerance_cases() {
    // TestTolerance: CPU at 102 % of a 100 % target.
    let nodes = [pod(R, 450, Some(505)), pod(R, 500, Some(515)), pod(R, 550, Some(510))];
    assert_eq!(resource_nodes(3, &nodes, 100, 0.1, true).unwrap().nodes, 3);
    // TestToleranceCM: a Pods metric at 1.0167 of its target.
    let p = |level| NodeSample { readiness: R, usage: Some(level), capacity: 0 };
    assert_eq!(average_nodes(3, &[p(20000), p(20001), p(21000)], 20000, 0.1, false).unwrap().nodes, 3);
    // TestToleranceCMObject, TestTolerancePerPodCMObject.
    assert_eq!(object_nodes(3, 3, 20050, 20000, 0.1).nodes, 3);
    assert_eq!(object_average_nodes(4, 8600, 2200, 0.1).nodes, 4);
}

#[test]
fn hpa_normalize_desired_replicas_with_behavior_cases() {
    let now = 1_000_000 * S;
    let recs = |list: &[(u32, u64)]| -> Vec<Recorded> {
        list.iter().map(|&(nodes, ago_s)| Recorded { at_ms: now - ago_s * S, nodes }).collect()
    };
    // (name, recommendations (nodes@age), current, desired, up window, down window, expected, stored after)
    let cases: Vec<(&str, Vec<(u32, u64)>, u32, u32, u32, u32, u32, Option<Vec<u32>>)> = vec![
        ("empty recommendations for scaling down", vec![], 100, 5, 0, 0, 5, Some(vec![5])),
        ("simple scale down stabilization", vec![(4, 120), (5, 60)], 100, 3, 0, 180, 5, Some(vec![4, 5, 3])),
        ("simple scale up stabilization", vec![(4, 120), (5, 60)], 1, 7, 300, 0, 4, Some(vec![4, 5, 7])),
        ("no scale down stabilization", vec![(1, 120), (2, 60)], 100, 3, 300, 0, 3, Some(vec![1, 2, 3])),
        ("no scale up stabilization", vec![(4, 120), (5, 60)], 1, 3, 0, 300, 3, Some(vec![4, 5, 3])),
        (
            "no scale down stabilization, reuse recommendation element",
            vec![(10, 600), (9, 540)],
            100,
            3,
            0,
            0,
            3,
            Some(vec![10, 3]),
        ),
        (
            "no scale up stabilization, reuse recommendation element",
            vec![(10, 600), (9, 540)],
            1,
            100,
            0,
            0,
            100,
            Some(vec![10, 100]),
        ),
        (
            "scale down stabilization, reuse one of obsolete recommendation element",
            vec![(10, 600), (4, 60), (5, 120), (9, 540)],
            100,
            3,
            0,
            180,
            5,
            Some(vec![10, 4, 5, 3]),
        ),
        (
            "scale up stabilization, reuse one of obsolete recommendation element",
            vec![(10, 6000), (6, 60), (5, 120), (9, 180)],
            1,
            100,
            300,
            0,
            5,
            Some(vec![100, 6, 5, 9]),
        ),
        (
            "scale up and down stabilization, do not scale up when prenormalized rec goes down",
            vec![(2, 6000), (3, 180)],
            2,
            1,
            300,
            300,
            2,
            None,
        ),
        (
            "scale up and down stabilization, do not scale down when prenormalized rec goes up",
            vec![(2, 6000), (1, 180)],
            2,
            3,
            300,
            300,
            2,
            None,
        ),
    ];
    for (name, history, current, desired, up_s, down_s, want, stored) in cases {
        let mut r = Recommender { recommendations: recs(&history), ..Default::default() };
        let up = rules(up_s, SelectPolicy::Max, &[]);
        let down = rules(down_s, SelectPolicy::Max, &[]);
        let (got, _) = r.stabilize(now, current, desired, &up, &down);
        assert_eq!(got, want, "{name}");
        if let Some(stored) = stored {
            let after: Vec<u32> = r.recommendations.iter().map(|x| x.nodes).collect();
            assert_eq!(after, stored, "{name}: the recommendations kept");
        }
    }
}

/// `generateScalingRules` of the HPA's tests: Max, a Pods policy when
/// `pods` is not 0, a Percent one when `percent` is not 0; what is left
/// unset takes the defaults.
fn generated(pods: u32, pods_period: u32, percent: u32, percent_period: u32, window: Option<u32>) -> ScalingRules {
    let mut policies = Vec::new();
    if pods != 0 {
        policies.push(ScalingPolicy { kind: Pods, value: pods, period_seconds: pods_period });
    }
    if percent != 0 {
        policies.push(ScalingPolicy { kind: Percent, value: percent, period_seconds: percent_period });
    }
    ScalingRules { stabilization_window_seconds: window, select_policy: Some(SelectPolicy::Max), policies }
}

#[test]
fn hpa_scaling_with_rules_cases() {
    let now = 1_000_000 * S;
    let d = Behavior::default();
    let none: &[(u32, u64)] = &[];
    let three: &[(u32, u64)] = &[(1, 100), (5, 60), (9, 20)];
    let four: &[(u32, u64)] = &[(8, 105), (12, 75), (9, 45), (11, 15)];
    use Reason::*;
    // (#, min, max, current, desired, scale-up rules, scale-down rules, up events, down events, expected, why)
    let cases: Vec<(u32, u32, u32, u32, u32, ScalingRules, ScalingRules, &[(u32, u64)], &[(u32, u64)], u32, Reason)> = vec![
        (1, 3, 8, 5, 7, d.up(), d.down(), none, none, 7, DesiredWithinRange),
        (2, 2, 8, 3, 1, d.up(), d.down(), none, none, 2, TooFewReplicas),
        (3, 0, 10, 1, 0, d.up(), d.down(), none, none, 0, DesiredWithinRange),
        (4, 1, 10, 20, 1000, d.up(), d.down(), none, none, 10, TooManyReplicas),
        (5, 100, 150, 100, 1000, d.up(), d.down(), none, none, 150, TooManyReplicas),
        (6, 1, 2000, 3, 1000, generated(0, 0, 1, 60, Some(0)), d.down(), none, none, 4, ScaleUpLimit),
        (7, 3, 2000, 1000, 3, d.up(), generated(20, 60, 0, 0, Some(0)), none, none, 980, ScaleDownLimit),
        (8, 1, 1000, 10, 50, d.up(), d.down(), none, none, 20, ScaleUpLimit),
        (9, 1, 1000, 10, 500, generated(100, 60, 100, 60, None), d.down(), none, none, 110, ScaleUpLimit),
        (10, 1, 1000, 10, 500, generated(2, 60, 100, 60, None), d.down(), none, none, 20, ScaleUpLimit),
        (11, 1, 1000, 10, 50, generated(100, 60, 0, 0, None), d.down(), none, none, 50, DesiredWithinRange),
        (12, 1, 1000, 10, 50, generated(10000, 60, 0, 0, None), d.down(), none, none, 50, DesiredWithinRange),
        (13, 1, 1000, 10, 50, generated(30, 60, 0, 0, None), d.down(), none, none, 40, ScaleUpLimit),
        (14, 1, 1000, 10, 50, generated(0, 0, 200, 60, None), d.down(), none, none, 30, ScaleUpLimit),
        (15, 1, 1000, 100, 2, d.up(), generated(20, 60, 1, 60, Some(300)), none, none, 80, ScaleDownLimit),
        (16, 1, 1000, 100, 2, d.up(), generated(2, 60, 1, 60, Some(300)), none, none, 98, ScaleDownLimit),
        (18, 1, 1000, 10, 0, d.up(), generated(100, 60, 0, 0, Some(300)), none, none, 1, TooFewReplicas),
        (19, 5, 1000, 10, 2, d.up(), generated(0, 0, 100, 60, Some(300)), none, none, 5, TooFewReplicas),
        (20, 1, 1000, 10, 2, d.up(), generated(5, 60, 0, 0, Some(300)), none, none, 5, ScaleDownLimit),
        (21, 1, 1000, 10, 5, d.up(), generated(0, 0, 50, 60, Some(300)), none, none, 5, DesiredWithinRange),
        (22, 1, 200, 100, 500, generated(300, 60, 0, 0, None), d.down(), three, none, 200, TooManyReplicas),
        (23, 1, 200, 100, 500, generated(0, 0, 10000, 60, None), d.down(), three, none, 200, TooManyReplicas),
        (24, 1, 1000, 100, 500, generated(5, 120, 0, 0, None), d.down(), three, none, 100, ScaleUpLimit),
        (25, 1, 1000, 100, 500, generated(150, 120, 0, 0, None), d.down(), three, none, 235, ScaleUpLimit),
        (26, 1, 1000, 100, 500, generated(0, 0, 200, 120, None), d.down(), three, none, 255, ScaleUpLimit),
        (27, 1, 1000, 6, 24, generated(0, 0, 300, 300, None), d.down(), &[(4, 60)], &[(2, 60)], 16, ScaleUpLimit),
        (28, 1, 1000, 10, 5, d.up(), d.down(), none, three, 5, DesiredWithinRange),
        (29, 1, 1000, 100, 0, d.up(), generated(115, 120, 0, 0, Some(300)), none, three, 1, TooFewReplicas),
        (30, 5, 1000, 100, 0, d.up(), generated(130, 120, 0, 0, Some(300)), none, three, 5, TooFewReplicas),
        (31, 5, 1000, 100, 2, d.up(), generated(0, 0, 100, 120, Some(300)), none, three, 5, TooFewReplicas),
        (32, 1, 1000, 100, 2, d.up(), generated(5, 120, 0, 0, Some(300)), none, three, 100, ScaleDownLimit),
        (
            33,
            1,
            1000,
            100,
            0,
            d.up(),
            generated(0, 0, 50, 120, Some(300)),
            none,
            &[(2, 100), (4, 60), (6, 20)],
            56,
            ScaleDownLimit,
        ),
        (34, 1, 1000, 10, 1, d.up(), generated(0, 0, 50, 180, Some(0)), &[(2, 60)], &[(4, 60)], 6, ScaleDownLimit),
        (
            35,
            1,
            1000,
            100,
            0,
            d.up(),
            generated(0, 0, 10, 120, Some(300)),
            none,
            &[(10, 100), (10, 60), (10, 20)],
            100,
            ScaleDownLimit,
        ),
        (
            36,
            1,
            1000,
            10,
            5,
            d.up(),
            generated(0, 0, 1000, 120, Some(300)),
            none,
            &[(10, 100), (10, 60), (10, 20)],
            5,
            DesiredWithinRange,
        ),
        (37, 1, 1000, 100, 200, generated(1000, 60, 0, 0, None), d.down(), four, none, 200, DesiredWithinRange),
        (38, 1, 1000, 100, 200, generated(1000, 120, 100, 60, None), d.down(), four, none, 200, DesiredWithinRange),
        (39, 1, 1000, 100, 200, generated(1000, 30, 100, 60, None), d.down(), four, none, 200, DesiredWithinRange),
        (40, 1, 1000, 100, 5, d.up(), generated(1000, 60, 0, 0, Some(300)), none, four, 5, DesiredWithinRange),
        (41, 1, 1000, 100, 5, d.up(), generated(1000, 120, 100, 60, Some(300)), none, four, 5, DesiredWithinRange),
        (42, 1, 1000, 100, 5, d.up(), generated(1000, 30, 100, 60, Some(300)), none, four, 5, DesiredWithinRange),
    ];
    // The test's rules go through the HPA's defaulting, as a policy's do.
    let defaulted = |up: ScalingRules, down: ScalingRules| {
        let b = Behavior { scale_up: Some(up), scale_down: Some(down) };
        (b.up(), b.down())
    };
    for (n, min, max, current, desired, up, down, ups, downs, want, why) in cases {
        let (up, down) = defaulted(up, down);
        let got = limit(now, current, desired, (min, max), &up, &down, &events(now, ups), &events(now, downs));
        assert_eq!(got, (want, why), "TestScalingWithRules case {n}");
    }
}

#[test]
fn hpa_scale_limit_with_select_min_cases() {
    // TestCalculateScaleUpLimitWithScalingRules / ...ScaleDownLimitWithBehaviors.
    let r = rules(300, SelectPolicy::Min, &[(Pods, 2, 60), (Percent, 50, 60)]);
    assert_eq!(scale_up_limit(0, 1, &[], &[], &r), 2);
    assert_eq!(scale_down_limit(0, 5, &[], &[], &r), 3);
}

#[test]
fn hpa_store_scale_events_cases() {
    let now = 1_000_000 * S;
    let two = [(Pods, 10, 60), (Percent, 100, 60)];
    // (name, policies, previous events (change@age), change within 60 s, changes after storing a change of 5)
    let cases: Vec<(&str, Vec<(ScalingPolicyKind, u32, u32)>, Vec<(u32, u64)>, i64, Vec<(u32, bool)>)> = vec![
        ("empty entries with two-policy-behavior", two.to_vec(), vec![], 0, vec![(5, false)]),
        ("one outdated entry to be replaced with behavior", two.to_vec(), vec![(7, 61)], 0, vec![(5, false)]),
        (
            "one actual entry to be not touched with behavior",
            two.to_vec(),
            vec![(7, 58)],
            7,
            vec![(7, false), (5, false)],
        ),
        (
            "two entries, one of them to be replaced",
            vec![(Pods, 10, 60)],
            vec![(7, 61), (6, 59)],
            6,
            vec![(5, false), (6, false)],
        ),
        (
            "replace one entry, use policies with different periods",
            vec![(Pods, 10, 60), (Percent, 100, 30)],
            vec![(8, 29), (6, 59), (7, 61), (9, 61)],
            14,
            vec![(8, false), (6, false), (7, true), (5, false)],
        ),
        (
            "two entries, both actual",
            vec![(Pods, 10, 120), (Percent, 100, 30)],
            vec![(7, 58), (6, 59)],
            13,
            vec![(7, false), (6, false), (5, false)],
        ),
    ];
    for (name, policies, previous, within, after) in cases {
        let r = rules(0, SelectPolicy::Max, &policies);
        // Both ways, as the HPA's test does.
        for up in [true, false] {
            let p = if up { policy(1, 100, Some(r.clone()), None) } else { policy(1, 100, None, Some(r.clone())) };
            let mut rec = Recommender::default();
            let prev = events(now, &previous);
            assert_eq!(changed_within(now, 60, &prev), within, "{name}");
            if up {
                rec.scale_ups = prev;
                rec.record_scale(now, &p, 10, 15);
            } else {
                rec.scale_downs = prev;
                rec.record_scale(now, &p, 10, 5);
            }
            let stored = if up { &rec.scale_ups } else { &rec.scale_downs };
            let got: Vec<(u32, bool)> = stored.iter().map(|e| (e.change, e.outdated)).collect();
            assert_eq!(got, after, "{name} ({})", if up { "up" } else { "down" });
        }
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn any_rules() -> impl Strategy<Value = ScalingRules> {
        (
            0u32..600,
            prop_oneof![Just(SelectPolicy::Max), Just(SelectPolicy::Min), Just(SelectPolicy::Disabled)],
            prop::collection::vec((any::<bool>(), 1u32..200, 1u32..600), 0..3),
        )
            .prop_map(|(window, select, policies)| ScalingRules {
                stabilization_window_seconds: Some(window),
                select_policy: Some(select),
                policies: policies
                    .into_iter()
                    .map(|(pods, value, period_seconds)| ScalingPolicy {
                        kind: if pods { Pods } else { Percent },
                        value,
                        period_seconds,
                    })
                    .collect(),
            })
    }

    proptest! {
        /// Whatever the history and the rules, a recommendation stays within
        /// the bounds, and between where the cluster is and where the
        /// metrics ask it to be: it never overshoots, nor goes the other way.
        #[test]
        fn a_recommendation_never_overshoots(
            (min, max) in (3u32..10, 0u32..20).prop_map(|(min, extra)| (min, min + extra)),
            up in any_rules(),
            down in any_rules(),
            steps in prop::collection::vec((0u64..120, 0u32..40), 1..30),
        ) {
            let p = policy(min, max, Some(up), Some(down));
            let mut r = Recommender::default();
            let mut now = 1_000_000 * S;
            let mut current = min;
            for (wait_s, asked) in steps {
                now += wait_s * S;
                let rec = r.normalize(now, &p, current, asked);
                let (lo, hi) = (current.min(asked).max(min), current.max(asked).min(max));
                prop_assert!(rec.nodes >= min && rec.nodes <= max, "{rec:?} outside {min}..{max}");
                prop_assert!(rec.nodes >= lo && rec.nodes <= hi, "{rec:?} from {current} asking {asked}");
                r.record_scale(now, &p, current, rec.nodes);
                current = rec.nodes;
            }
        }
    }
}
