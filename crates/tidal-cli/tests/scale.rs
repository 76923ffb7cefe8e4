//! Scale-up plans against a real cluster: `tidal scale --dry-run` and the
//! scaling API show what would change, refuse bad requests, and change
//! nothing.

mod common;

use common::{http, http_get, json_of, Cluster};
use serde_json::Value;

fn cp_version(c: &Cluster) -> u64 {
    let (_, body) = http_get(&c.nodes[0].http, "/api/v1/cluster").unwrap();
    serde_json::from_str::<Value>(&body).unwrap()["cpVersion"].as_u64().unwrap()
}

#[test]
fn a_dry_run_shows_the_plan_and_changes_nothing() {
    let c = Cluster::start(3, &["--prgs", "4", "--slots", "64"]);
    let before = (cp_version(&c), c.routing(0));
    let out = c.tidal(&["scale", "--nodes", "5", "--prgs", "default=8", "--dry-run"]);
    let plan = json_of(&out);
    assert_eq!(plan["cpVersion"].as_u64(), Some(before.0), "{plan}");
    let added: Vec<u64> = plan["addNodes"].as_array().unwrap().iter().map(|n| n["id"].as_u64().unwrap()).collect();
    assert_eq!(added, vec![4, 5]);
    let new = plan["newPrgs"].as_array().unwrap();
    assert_eq!(new.len(), 4);
    assert_eq!(new[0]["prg"], "default:4");
    // 16 slots per old PRG, half of each to a new one.
    let slots: u64 = plan["slotMoves"].as_array().unwrap().iter().map(|m| m["slotCount"].as_u64().unwrap()).sum();
    assert_eq!(slots, 32, "{plan}");
    // The two new nodes need 9 of the 24 replicas; new PRGs bring at most 8.
    assert_eq!(plan["replicaMoves"].as_array().unwrap().len(), 1, "{plan}");
    assert_eq!(plan["epochBumps"].as_u64(), Some(1 + 1 + 4));
    // The same request, the same plan.
    let again = json_of(&c.tidal(&["scale", "--nodes", "5", "--prgs", "default=8", "--dry-run"]));
    assert_eq!(again, plan);
    // Text for people.
    let text = c.tidal_text(&["scale", "--nodes", "5", "--prgs", "default=8", "--dry-run"]);
    assert!(text.contains("nodes to start: 4, 5") && text.contains("default:4"), "{text}");
    assert_eq!((cp_version(&c), c.routing(0)), before, "a dry run changed the cluster");
}

#[test]
fn bad_scale_requests_are_refused_and_change_nothing() {
    let c = Cluster::start(3, &["--prgs", "2", "--slots", "16"]);
    let before = (cp_version(&c), c.routing(0));
    let addr = &c.nodes[1].http;
    for (path, body, want) in [
        ("/api/v1/clusters/tidal/scale", r#"{"operation":"scale_in","target_count":2}"#, 400),
        ("/api/v1/clusters/tidal/scale", r#"{"operation":"scale_out","target_count":2,"dry_run":true}"#, 400),
        ("/api/v1/clusters/tidal/scale", r#"{"operation":"scale_out","target_count":5000,"dry_run":true}"#, 400),
        ("/api/v1/clusters/tidal/scale", r#"{"operation":"grow","dry_run":true}"#, 400),
        ("/api/v1/clusters/tidal/scale", r#"{"operation":"scale_out","dry_run":true}"#, 400),
        ("/api/v1/clusters/other/scale", r#"{"operation":"scale_out","target_count":5}"#, 404),
        ("/api/v1/tenants/nope/scale", r#"{"prgs":4,"dry_run":true}"#, 404),
        ("/api/v1/tenants/default/scale", r#"{"prgs":1,"dry_run":true}"#, 409),
        ("/api/v1/tenants/default/scale", r#"{"prgs":17,"dry_run":true}"#, 400),
        ("/api/v1/tenants/default/scale", r#"{"prgs":4,"extra":1}"#, 400),
        ("/api/v1/tenants/default/scale", "not json", 400),
    ] {
        let (code, resp) = http(addr, "POST", path, body.as_bytes()).unwrap();
        assert_eq!(code, want, "{path} {body}: {resp}");
        assert!(resp.contains("error"), "{resp}");
    }
    let out = c.tidal(&["scale", "--prgs", "default"]);
    assert_eq!(out.status.code(), Some(64), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!((cp_version(&c), c.routing(0)), before, "a refused request changed the cluster");
}

fn status(c: &Cluster, i: usize) -> Value {
    let (code, body) = http_get(&c.nodes[i].http, "/api/v1/clusters/tidal/status").unwrap();
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// The cluster's status follows its health and its moves: healthy and
/// stable at rest, the latest move as its last operation, and degraded,
/// naming the node, when a node stops.
#[test]
fn the_cluster_status_follows_health_and_moves() {
    let mut c = Cluster::start(3, &["--prgs", "2", "--slots", "16"]);
    let s = common::wait_for(std::time::Duration::from_secs(30), "a healthy cluster", || {
        let s = status(&c, 1);
        (s["health_status"] == "healthy").then_some(s)
    });
    assert_eq!(s["cluster_id"], "tidal");
    assert_eq!(s["instances"], 3);
    assert_eq!(s["scaling_status"], "stable");
    assert!(s["last_operation"].is_null(), "{s}");
    let (code, _) = http_get(&c.nodes[0].http, "/api/v1/clusters/other/status").unwrap();
    assert_eq!(code, 404);

    let moved = json_of(&c.tidal(&["move", "slots", "--slots", "0-1", "--to", "default:1", "--wait"]));
    assert_eq!(moved["state"], "done", "{moved}");
    let s = status(&c, 1);
    assert_eq!(s["last_operation"]["type"], "slot_move", "{s}");
    assert_eq!(s["last_operation"]["status"], "done", "{s}");
    assert_eq!(s["scaling_status"], "stable");

    c.kill(2);
    let s = common::wait_for(std::time::Duration::from_secs(40), "the stopped node to be named", || {
        let s = status(&c, 0);
        (s["health_status"] == "degraded").then_some(s)
    });
    let reasons = s["health_reasons"].to_string();
    assert!(reasons.contains("node 3"), "{s}");
}
