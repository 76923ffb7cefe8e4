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
        ("/api/v1/clusters/tidal/scale", r#"{"operation":"scale_in","target_count":2}"#, 409),
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
