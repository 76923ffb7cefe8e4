use super::*;
use crate::autoscale::journal::parse_policy;

const MINUTE: u64 = 60_000;

/// One row a minute for `minutes`, `ops` from `load(minute)`.
fn trace(minutes: u64, load: impl Fn(u64) -> f64) -> Vec<TraceRow> {
    (0..minutes).map(|m| TraceRow { at_ms: m * MINUTE, figures: [("ops".to_string(), load(m))].into() }).collect()
}

fn ops_policy(extra: &str) -> Policy {
    parse_policy(&format!(
        r#"{{"minNodes":3,"maxNodes":10,"metrics":[{{"type":"Pods","pods":{{"metric":{{"name":"ops_per_node"}},
        "target":{{"type":"AverageValue","averageValue":1000}}}}}}]{extra}}}"#
    ))
    .unwrap()
}

#[test]
fn a_load_step_scales_up_as_far_as_the_policies_allow_then_back_down() {
    // 3 000 ops a second, 9 000 for an hour, then 3 000 again.
    let t = trace(240, |m| if (30..90).contains(&m) { 9_000.0 } else { 3_000.0 });
    let r = simulate(&ops_policy(""), &t, &Model::default());
    let actions: Vec<(u64, &str, u32)> =
        r.decisions.iter().map(|d| (d.at_ms / MINUTE, d.action.as_str(), d.nodes)).collect();
    // The HPA's default scale-up: at most +100 % or +4 nodes a period, the
    // larger: 3 → 7; once those count, 7 → 9 (ceil(7 × 9000/7 / 1000)).
    assert_eq!(&actions[..4], &[(30, "scale-up", 7), (35, "done", 7), (35, "scale-up", 9), (40, "done", 9)]);
    // Down once the load drops (minute 90), after the 5-minute
    // stabilization window (whose recommendations are those newer than 5
    // minutes), drafted and (with no operator delay) armed at once.
    let down = r.decisions.iter().find(|d| d.action == "draft").unwrap();
    assert_eq!((down.nodes, down.at_ms / MINUTE), (3, 94), "{down:?}");
    assert_eq!(r.steps.last().unwrap().nodes, 3);
    assert_eq!(r.peak_nodes, 9);
    // Above the target (and 50 % above) from the step until the nodes came:
    // 9 000 on 3 nodes is 3×, on 7 it is 1.29×.
    assert_eq!(r.critical_minutes, 5.0);
    assert_eq!(r.warning_minutes, 10.0);
    // The load and capacity of the first metric, per step.
    let s = &r.steps[31];
    assert_eq!((s.load, s.capacity, s.nodes, s.billed), (Some(9_000.0), Some(3_000.0), 3, 7));
    assert!(r.node_hours > 3.0 * 4.0 && r.node_hours < 9.0 * 4.0, "{}", r.node_hours);
    assert_eq!(r.shown_metric.as_deref(), Some("ops_per_node"));
}

#[test]
fn drafts_wait_for_their_operator_unless_the_policy_arms_them() {
    let t = trace(120, |m| if m < 10 { 9_000.0 } else { 1_000.0 });
    let model = Model { nodes: 9, arm_after_ms: 20 * MINUTE, ..Model::default() };
    let quick = r#","behavior":{"scaleDown":{"stabilizationWindowSeconds":0}},"cooldowns":{"afterScaleUpSeconds":0}"#;
    let r = simulate(&ops_policy(quick), &t, &model);
    let at = |what: &str| r.decisions.iter().find(|d| d.action == what).map(|d| d.at_ms / MINUTE);
    assert_eq!((at("draft"), at("armed")), (Some(10), Some(30)), "{:?}", r.decisions);
    let policy = parse_policy(&format!(
        r#"{{"minNodes":3,"maxNodes":10,"autoArm":true,"metrics":[{{"type":"Pods","pods":{{"metric":{{"name":"ops_per_node"}},
        "target":{{"type":"AverageValue","averageValue":1000}}}}}}]{quick}}}"#
    ))
    .unwrap();
    let r = simulate(&policy, &t, &model);
    let at = |what: &str| r.decisions.iter().find(|d| d.action == what).map(|d| d.at_ms / MINUTE);
    assert_eq!((at("draft"), at("armed")), (Some(10), Some(10)), "{:?}", r.decisions);
}

#[test]
fn a_draft_is_cancelled_when_the_load_comes_back_first() {
    // Down for 5 minutes, then back up, with a slow operator.
    let t = trace(60, |m| if (10..15).contains(&m) { 1_000.0 } else { 9_000.0 });
    let quick = r#","behavior":{"scaleDown":{"stabilizationWindowSeconds":0}},"cooldowns":{"afterScaleUpSeconds":0}"#;
    let model = Model { nodes: 9, arm_after_ms: 30 * MINUTE, ..Model::default() };
    let r = simulate(&ops_policy(quick), &t, &model);
    let actions: Vec<&str> = r.decisions.iter().map(|d| d.action.as_str()).collect();
    assert_eq!(actions, ["draft", "draft cancelled"], "{:?}", r.decisions);
    assert!(r.steps.iter().all(|s| s.nodes == 9));
}

#[test]
fn a_metric_the_trace_lacks_changes_nothing() {
    let cpu = parse_policy(
        r#"{"minNodes":3,"maxNodes":10,"metrics":[{"type":"Resource","resource":{"name":"cpu",
        "target":{"type":"Utilization","averageUtilization":60}}}]}"#,
    )
    .unwrap();
    let r = simulate(&cpu, &trace(60, |_| 50_000.0), &Model::default());
    assert!(r.decisions.is_empty(), "{:?}", r.decisions);
    assert_eq!(r.warning_minutes, 0.0);
    assert!((r.node_hours - 3.0).abs() < 1e-9, "{}", r.node_hours);
    // With a cpu column: 3 cores busy of 6 is 50 %, under a 60 % target…
    let mut t = trace(60, |_| 0.0);
    for (i, row) in t.iter_mut().enumerate() {
        row.figures.insert("cpu".into(), if i < 30 { 3.0 } else { 6.0 });
    }
    let r = simulate(&cpu, &t, &Model::default());
    // …then 100 %: ceil(3 × 100 / 60) = 5 nodes.
    assert_eq!(r.decisions.first().map(|d| (d.at_ms / MINUTE, d.nodes)), Some((30, 5)), "{:?}", r.decisions);
    // Capacity in cores at the target: 3 nodes × 2 cores × 60 %.
    assert_eq!(r.steps[0].capacity, Some(3.6));
    // The CPU indicator (warning 70 %, critical 90 %): 6 cores busy on 3
    // nodes of 2 is 100 % until the 5 nodes serve (5 minutes), then 60 %.
    assert_eq!(r.indicator_minutes.get("cpu"), Some(&(5.0, 5.0)), "{:?}", r.indicator_minutes);
    assert!(!r.indicator_minutes.contains_key("p99_ms"));
}

#[test]
fn a_forecast_scales_up_ahead_of_a_daily_peak() {
    // Five days: 3 000 ops a second, 9 000 from 09:00 to 12:00.
    let t = trace(5 * 1440, |m| if (540..720).contains(&(m % 1440)) { 9_000.0 } else { 3_000.0 });
    let quick = r#","behavior":{"scaleDown":{"stabilizationWindowSeconds":0}},
        "cooldowns":{"afterScaleUpSeconds":0,"afterScaleDownSeconds":0}"#;
    let model = Model { scale_up_ms: 10 * MINUTE, scale_down_ms: 10 * MINUTE, ..Model::default() };
    // The first scale-up on the last day, in minutes of that day.
    let first_up = |r: &SimReport| {
        r.decisions
            .iter()
            .find(|d| d.action == "scale-up" && d.at_ms / MINUTE >= 4 * 1440)
            .map(|d| d.at_ms / MINUTE % 1440)
    };
    let plain = simulate(&ops_policy(quick), &t, &model);
    assert_eq!(first_up(&plain), Some(540), "{:?}", plain.decisions);
    let ahead = simulate(&ops_policy(&format!(r#"{quick},"forecast":{{"leadSeconds":600}}"#)), &t, &model);
    let at = first_up(&ahead).unwrap();
    assert!((525..540).contains(&at), "scaled up at minute {at} of the day: {:?}", ahead.decisions);
    assert!(ahead.decisions.iter().any(|d| d.why.contains("forecast") && d.why.contains("day season")));
    // Ahead of the load, it is past the target for less time.
    assert!(ahead.warning_minutes < plain.warning_minutes, "{} vs {}", ahead.warning_minutes, plain.warning_minutes);
}
