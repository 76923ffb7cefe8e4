use super::*;

fn parse(json: &str) -> Policy {
    serde_json::from_str(json).expect("policy parses")
}

fn fields(p: &Policy) -> Vec<String> {
    p.validate().err().unwrap_or_default().into_iter().map(|e| e.field).collect()
}

const GOOD: &str = r#"{
    "minNodes": 3, "maxNodes": 9,
    "metrics": [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}},
        {"type": "Pods", "pods": {"metric": {"name": "ops_per_node"}, "target": {"type": "AverageValue", "averageValue": 20000}}},
        {"type": "Object", "object": {"metric": {"name": "p99_ms"}, "target": {"type": "Value", "value": 5}}}
    ],
    "behavior": {
        "scaleUp": {"stabilizationWindowSeconds": 0, "policies": [{"type": "Pods", "value": 2, "periodSeconds": 60}]},
        "scaleDown": {"selectPolicy": "Min"}
    },
    "tenants": {"default": {"targetPerPrg": {"ops": 5000}}}
}"#;

#[test]
fn a_good_policy_validates_and_takes_the_hpa_defaults() {
    let p = parse(GOOD);
    assert_eq!(p.validate(), Ok(()));
    assert_eq!(p.tolerance, DEFAULT_TOLERANCE);
    assert!(!p.auto_arm);
    // Cooldowns as the cluster autoscaler's: 10 min after an add, 3 min after a failure.
    assert_eq!((p.cooldowns.after_scale_up_seconds, p.cooldowns.after_failure_seconds), (600, 180));
    let up = p.behavior.up();
    assert_eq!((up.window_ms(), up.select(), up.policies.len()), (0, SelectPolicy::Max, 1));
    // scaleDown gave only its selectPolicy: the rest is the HPA's default.
    let down = p.behavior.down();
    assert_eq!((down.window_ms(), down.select()), (300_000, SelectPolicy::Min));
    assert_eq!(down.policies, vec![ScalingPolicy { kind: ScalingPolicyKind::Percent, value: 100, period_seconds: 15 }]);
    // No behavior at all: both defaults.
    let bare = parse(r#"{"minNodes": 3, "maxNodes": 5}"#);
    assert_eq!(bare.behavior.up().policies.len(), 2);
    assert_eq!(bare.behavior.down().window_ms(), 300_000);
    // It round-trips.
    let again: Policy = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
    assert_eq!(again, p);
}

#[test]
fn every_wrong_field_is_named() {
    let p = parse(
        r#"{
        "minNodes": 5, "maxNodes": 4, "tolerance": 1.5,
        "metrics": [
            {"type": "Resource", "resource": {"name": "disk", "target": {"type": "Utilization", "averageUtilization": 60}}},
            {"type": "Pods", "pods": {"metric": {"name": "ops_per_node"}, "target": {"type": "AverageValue", "averageValue": -1}}},
            {"type": "Object", "pods": {"metric": {"name": "p99_ms"}, "target": {"type": "Value", "value": 5}}},
            {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 0}}},
            {"type": "Resource", "resource": {"name": "memory", "target": {"type": "Value", "value": 3}}}
        ],
        "behavior": {
            "scaleUp": {"stabilizationWindowSeconds": 3601, "policies": [{"type": "Percent", "value": 0, "periodSeconds": 0}]}
        },
        "tenants": {"a": {"targetPerPrg": {}}, "b": {"targetPerPrg": {"bytes": 0}}},
        "maxReplicasPerNode": 0, "maxDataFill": 1.5,
        "cooldowns": {"afterFailureSeconds": 86401}
    }"#,
    );
    assert_eq!(
        fields(&p),
        [
            "maxNodes",
            "tolerance",
            "metrics[0].resource.name",
            "metrics[1].pods.target.averageValue",
            "metrics[2].pods",
            "metrics[2].object",
            "metrics[3].resource.target.averageUtilization",
            "metrics[4].resource.target.type",
            "behavior.scaleUp.stabilizationWindowSeconds",
            "behavior.scaleUp.policies[0].value",
            "behavior.scaleUp.policies[0].periodSeconds",
            "maxReplicasPerNode",
            "maxDataFill",
            "cooldowns.afterFailureSeconds",
            "tenants.a.targetPerPrg",
            "tenants.b.targetPerPrg.bytes",
        ]
    );
    let errors = p.validate().unwrap_err();
    assert!(errors[2].why.contains("unknown metric 'disk'") && errors[2].why.contains("cpu, memory"), "{}", errors[2]);
}

#[test]
fn metric_names_belong_to_their_source() {
    let p = parse(
        r#"{"minNodes": 3, "maxNodes": 3, "metrics": [
            {"type": "Pods", "pods": {"metric": {"name": "cpu"}, "target": {"type": "AverageValue", "averageValue": 1}}},
            {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}},
            {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}
        ]}"#,
    );
    let errors = p.validate().unwrap_err();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[0].field, "metrics[0].pods.metric.name");
    assert!(errors[0].why.contains("of type Resource"), "{}", errors[0]);
    assert_eq!(errors[1].to_string(), "metrics[2]: cpu is named twice");
}

#[test]
fn unknown_fields_and_too_few_nodes_are_refused() {
    assert!(serde_json::from_str::<Policy>(r#"{"minNodes": 3, "maxNodes": 4, "maxReplicas": 9}"#).is_err());
    assert_eq!(fields(&parse(r#"{"minNodes": 2, "maxNodes": 4}"#)), ["minNodes"]);
}

#[test]
fn metrics_serialize_by_their_policy_names() {
    for m in Metric::ALL {
        assert_eq!(serde_json::to_string(&m).unwrap(), format!("\"{}\"", m.name()));
        assert_eq!(Metric::parse(m.name()), Some(m));
    }
}

#[test]
fn a_forecast_needs_an_ops_per_node_target() {
    let p: Policy = serde_json::from_str(r#"{"minNodes":3,"maxNodes":5,"forecast":{"leadSeconds":90000}}"#).unwrap();
    let fields: Vec<String> = p.validate().unwrap_err().into_iter().map(|e| e.field).collect();
    assert_eq!(fields, ["forecast.leadSeconds", "forecast"]);
    let ok: Policy = serde_json::from_str(
        r#"{"minNodes":3,"maxNodes":5,"forecast":{},"metrics":[{"type":"Pods","pods":{"metric":{"name":"ops_per_node"},
            "target":{"type":"AverageValue","averageValue":100}}}]}"#,
    )
    .unwrap();
    ok.validate().unwrap();
    assert_eq!(ok.forecast.unwrap().lead_seconds, 600);
}
