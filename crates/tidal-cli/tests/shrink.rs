//! Shrink plans against a real cluster: a plan is drafted with its exact
//! moves, kept by the control plane across a restart of every node,
//! cancelled, and bad plans are refused; none of it moves anything.

mod common;

use std::time::Duration;

use common::{http, http_get, Cluster};
use serde_json::{json, Value};

/// What a shrink could change: the routing epoch, the slot table and each
/// PRG's members (not its leader hint, which a restart may change).
fn layout(c: &Cluster, i: usize) -> (u64, Value, Vec<(String, Value)>) {
    let r = c.routing(i);
    let members = r["placements"].as_array().unwrap().iter().map(|p| (p["prg"].to_string(), p["members"].clone()));
    (r["routingEpoch"].as_u64().unwrap(), r["tenants"].clone(), members.collect())
}

fn post(c: &Cluster, path: &str, body: &Value) -> (u16, Value) {
    let (code, text) = http(&c.nodes[1].http, "POST", path, body.to_string().as_bytes()).unwrap();
    (code, serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: not JSON: {text}")))
}

fn plans(c: &Cluster, i: usize) -> Vec<Value> {
    let (code, body) = http_get(&c.nodes[i].http, "/admin/shrink-plan").unwrap();
    assert_eq!(code, 200, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["plans"].as_array().unwrap().clone()
}

fn metric(c: &Cluster, name: &str) -> Option<u64> {
    let (_, body) = http_get(&c.nodes[0].http, "/metrics").unwrap();
    body.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[test]
fn a_shrink_plan_is_drafted_kept_across_a_restart_of_every_node_and_cancelled() {
    let mut c = Cluster::start(3, &["--prgs", "4", "--slots", "64"]);
    let before = layout(&c, 0);
    let epoch = before.0;

    // The easy form, previewed: two of the four PRGs drain into the others.
    let (code, preview) = post(&c, "/admin/shrink-plan", &json!({"prgs": {"default": 2}, "dry_run": true}));
    assert_eq!(code, 200, "{preview}");
    assert_eq!(preview["state"], "Draft");
    assert_eq!(preview["remove_prgs"].as_array().unwrap().len(), 2, "{preview}");
    assert_eq!(preview["remove_nodes"], json!([]));
    let moved: u64 = preview["slot_moves"].as_array().unwrap().iter().map(|m| m["slot_count"].as_u64().unwrap()).sum();
    assert_eq!(moved, 32, "{preview}");
    assert!(plans(&c, 0).is_empty(), "a dry run records nothing");
    let text = c.tidal_text(&["shrink-plan", "create", "--prgs", "default=2", "--dry-run"]);
    assert!(
        text.contains("slot moves") && text.contains("PRGs deleted once empty") && text.contains("dry run"),
        "{text}"
    );
    let out = c.tidal(&["shrink-plan", "create"]);
    assert_eq!(out.status.code(), Some(64), "no size asked for");
    assert!(plans(&c, 0).is_empty());

    // The runbook's form: keep PRGs 0 and 1 on nodes 1-3.
    let target = |prg: &str| json!({"prg_id": prg, "target_members": [1, 2, 3], "target_routing_epoch": epoch + 1});
    let body = json!({"plan_id": "shrink-p4", "target_placements": [target("default:0"), target("default:1")]});
    let (code, plan) = post(&c, "/admin/shrink-plan", &body);
    assert_eq!(code, 201, "{plan}");
    assert_eq!((plan["plan_id"].as_str(), plan["state"].as_str()), (Some("shrink-p4"), Some("Draft")));
    assert_eq!(plan["remove_prgs"], json!(["default:2", "default:3"]));
    assert_eq!(plan["routing_epoch"].as_u64(), Some(epoch));
    assert!(plan["eta_ms"].as_u64().unwrap() > 0 && plan["slot_moves"].as_array().unwrap().len() >= 2);
    let (code, again) = post(&c, "/admin/shrink-plan", &body);
    assert_eq!(code, 409, "a duplicate id: {again}");
    common::wait_for(Duration::from_secs(10), "every node to see the plan", || {
        (0..3).all(|i| plans(&c, i).len() == 1).then_some(())
    });
    let (code, shown) = http_get(&c.nodes[2].http, "/admin/shrink-plan/shrink-p4").unwrap();
    assert_eq!(code, 200);
    assert_eq!(serde_json::from_str::<Value>(&shown).unwrap()["slot_moves"], plan["slot_moves"]);
    assert_eq!(
        (metric(&c, "tidal_cp_shrink_plans_total"), metric(&c, "tidal_cp_shrink_plans_armed")),
        (Some(1), Some(0))
    );

    // Every node restarts: the plan is still a Draft, and nothing moved.
    for i in 0..3 {
        c.kill(i);
    }
    for i in 0..3 {
        c.spawn(i);
    }
    c.wait_all_ready(Duration::from_secs(60));
    let kept = plans(&c, 0);
    assert_eq!((kept.len(), kept[0]["state"].as_str()), (1, Some("Draft")), "{kept:?}");
    assert_eq!(layout(&c, 0), before, "a restart moved something");

    let (code, _) = post(&c, "/admin/shrink-plan/arm", &json!({"plan_id": "nope"}));
    assert_eq!(code, 404);

    let text = c.tidal_text(&["shrink-plan", "cancel", "shrink-p4"]);
    assert!(text.contains("Cancelled"), "{text}");
    let cancelled = common::json_of(&c.tidal(&["shrink-plan", "show", "shrink-p4"]));
    assert_eq!(cancelled["state"], "Cancelled", "{cancelled}");
    for path in ["/admin/shrink-plan/arm", "/admin/shrink-plan/cancel"] {
        let (code, why) = post(&c, path, &json!({"plan_id": "shrink-p4"}));
        assert_eq!(code, 409, "{path} of a cancelled plan: {why}");
    }
    assert_eq!(metric(&c, "tidal_cp_shrink_plans_cancelled"), Some(1));

    // The scaling API's scale_in drafts a plan and leaves arming to an operator.
    let (code, drafted) =
        post(&c, "/api/v1/clusters/tidal/scale", &json!({"operation": "scale_in", "prgs": {"default": 3}}));
    assert_eq!((code, drafted["state"].as_str()), (201, Some("Draft")), "{drafted}");
    assert!(drafted["plan_id"].as_str().is_some_and(|id| id.starts_with("shrink-v")), "{drafted}");
    assert_eq!(drafted["remove_prgs"].as_array().map(Vec::len), Some(1));
    assert_eq!(plans(&c, 0).len(), 2);
    // Arming at once is a policy, off by default: refused, nothing drafted.
    let ask = json!({"operation": "scale_in", "prgs": {"default": 2}, "auto_arm": true});
    let (code, why) = post(&c, "/api/v1/clusters/tidal/scale", &ask);
    assert_eq!(code, 409, "{why}");
    assert!(why["error"].as_str().is_some_and(|e| e.contains("--shrink-auto-arm")), "{why}");
    assert_eq!(plans(&c, 0).len(), 2);
    assert_eq!(layout(&c, 0), before, "drafts and a cancel moved something");
}

#[test]
fn bad_shrink_plans_are_refused_and_change_nothing() {
    let c = Cluster::start(3, &["--prgs", "4", "--slots", "64"]);
    let before = layout(&c, 0);
    let epoch = before.0;
    let t = |prg: &str, members: Value, e: u64| json!({"prg_id": prg, "target_members": members, "target_routing_epoch": e});
    let raw = |targets: Vec<Value>| json!({"plan_id": "p", "target_placements": targets});
    // Every PRG where it is: nothing shrinks.
    let same: Vec<Value> = before.2.iter().map(|(p, m)| t(p.trim_matches('"'), m.clone(), epoch + 1)).collect();
    let cases: Vec<(Value, u16)> = vec![
        (json!("not an object"), 400),
        (json!({"plan_id": "p", "nodes": 2, "extra": 1}), 400),
        (json!({"plan_id": "p", "nodes": 2, "target_placements": []}), 400),
        (json!({"target_placements": [t("default:0", json!([1, 2, 3]), epoch + 1)]}), 400),
        (json!({"plan_id": "has space", "target_placements": [t("default:0", json!([1, 2, 3]), epoch + 1)]}), 400),
        (raw(vec![]), 400),
        (raw(vec![t("default:9", json!([1, 2, 3]), epoch + 1)]), 404),
        (raw(vec![t("bad", json!([1, 2, 3]), epoch + 1)]), 400),
        (raw(vec![t("default:0", json!([1, 2]), epoch + 1)]), 400),
        (raw(vec![t("default:0", json!([1, 2, 2]), epoch + 1)]), 400),
        (raw(vec![t("default:0", json!([1, 2, 9]), epoch + 1)]), 400),
        (raw(vec![t("default:0", json!([1, 2, 3]), epoch)]), 409),
        (raw(same), 400),
        (json!({"nodes": 2}), 400),
        (json!({"nodes": 4}), 400),
        (json!({"prgs": {"default": 5}}), 400),
        (json!({"prgs": {"default": 0}}), 400),
        (json!({"prgs": {"nope": 1}}), 404),
        (json!({"prgs": {"default": 4}}), 400),
    ];
    for (body, want) in cases {
        let (code, why) = post(&c, "/admin/shrink-plan", &body);
        assert_eq!(code, want, "{body}: {why}");
        assert!(why["error"].as_str().is_some_and(|e| !e.is_empty()), "{why}");
    }
    for path in ["/admin/shrink-plan/arm", "/admin/shrink-plan/cancel"] {
        assert_eq!(post(&c, path, &json!({"plan_id": "p"})).0, 404);
        assert_eq!(post(&c, path, &json!({"id": "p"})).0, 400);
    }
    assert_eq!(http_get(&c.nodes[0].http, "/admin/shrink-plan/p").unwrap().0, 404);
    assert!(plans(&c, 0).is_empty());
    assert_eq!(layout(&c, 0), before, "a refused plan changed the cluster");
}
