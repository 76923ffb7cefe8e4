//! Data movement against real clusters: new PRGs, slot moves under a
//! verified load, a cancel, a SIGKILL of the control-plane leader during a
//! move, leader transfer, and bad input.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{http, http_get, json_of, owner, wait_for, Cluster, BIN};
use serde_json::Value;

fn bench(c: &Cluster, seconds: u64, keys: u64) -> std::process::Child {
    let endpoints: Vec<&str> = c.nodes.iter().map(|n| n.redis.as_str()).collect();
    let target = format!("resp://{}", endpoints.join(","));
    let duration = format!("{seconds}s");
    let keys = keys.to_string();
    Command::new(BIN)
        .arg("bench")
        .args(["--target", &target, "--clients", "8", "--duration", &duration, "--workload", "a"])
        .args(["--keys", &keys, "--value-size", "512", "--verify", "--verify-every", "4s", "--timeout", "3s"])
        .args(["--json", "-"])
        .env("TIDAL_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tidal bench")
}

/// The bench run ended with every acknowledged write read back, and no
/// client ever saw an error.
fn assert_clean(out: Output) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let s: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("bench printed no JSON ({e}): {stderr}"));
    let v = &s["verify"];
    for k in ["lost", "stale", "phantom", "unverified"] {
        assert_eq!(v[k], 0, "{k}: {v}\n{stderr}");
    }
    assert!(v["acked_writes"].as_u64().unwrap() > 200, "{v}");
    for p in s["phases"].as_array().unwrap() {
        assert_eq!(p["errors"], 0, "clients saw errors during the move: {p}\n{stderr}");
    }
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

fn dbsize(c: &Cluster) -> i64 {
    match c.client(0).cmd(&["DBSIZE"]).unwrap() {
        common::Value::Int(n) => n,
        other => panic!("DBSIZE: {other:?}"),
    }
}

/// Add a PRG, move an eighth of the slots to it while eight clients read
/// and write with verification: the move finishes, clients see no error,
/// nothing acknowledged is lost or stale, and counts stay exact.
#[test]
fn slots_move_to_a_new_prg_under_verified_load() {
    let c = Cluster::start(3, &["--prgs", "2", "--slots", "256", "--fence-budget-ms", "15000"]);
    let load = bench(&c, 12, 4000);
    std::thread::sleep(Duration::from_secs(2));

    let added = json_of(&c.tidal(&["prgs", "add", "--tenant", "default", "--count", "1"]));
    assert_eq!(added["prgs"][0], "default:2", "{added}");

    let out = c.tidal(&["move", "slots", "--tenant", "default", "--slots", "0-31", "--to", "default:2", "--wait"]);
    let m = json_of(&out);
    assert_eq!(m["state"], "done", "{m}");
    assert_eq!(m["slotCount"], 32);
    assert!(m["bytes"].as_u64().unwrap() > 0, "{m}");
    assert!(m["fenceWindowMs"].as_u64().is_some(), "{m}");
    assert_clean(load.wait_with_output().unwrap());

    // The routing table names the new owner, and every key is counted once.
    let routing = c.routing(1);
    assert!((0..32).all(|s| owner(&routing, s) == "default:2"), "{routing}");
    assert_eq!(owner(&routing, 32), "default:0");
    let keys = dbsize(&c);
    assert!(keys > 0 && keys <= 4000, "DBSIZE {keys}");
    let listed = json_of(&c.tidal(&["moves"]));
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    // The control plane knows that every node has applied the move's
    // epoch, and what each holds: rows (every node hosts a replica of
    // every PRG, and the load wrote keys to each), and files at least as
    // big.
    let epoch = m["commitEpoch"].as_u64().unwrap();
    wait_for(Duration::from_secs(10), "every node to report the move's epoch", || {
        let (_, body) = http_get(&c.nodes[2].http, "/api/v1/nodes").ok()?;
        let nodes: Value = serde_json::from_str(&body).ok()?;
        let all = nodes.as_array()?;
        let current = all.iter().all(|n| n["appliedEpoch"].as_u64().is_some_and(|e| e >= epoch));
        let sized = all.iter().all(|n| {
            let data = n["dataBytes"].as_u64().unwrap_or(0);
            data > 0 && n["storedBytes"].as_u64().is_some_and(|disk| disk >= data)
        });
        (current && sized).then_some(())
    });
}

/// A cancelled move rolls back: the source serves its slots again, the
/// target's copy is gone, and the same slots can be moved afterwards.
#[test]
fn a_cancelled_move_puts_everything_back() {
    let c = Cluster::start(3, &["--prgs", "2", "--slots", "64", "--move-rate-mb", "1", "--fence-budget-ms", "15000"]);
    let mut cl = c.client(0);
    let value = "x".repeat(4096);
    for i in 0..1500 {
        assert_eq!(cl.cmd(&["SET", &format!("k{i}"), &value]).unwrap(), common::Value::Simple("OK".into()));
    }
    json_of(&c.tidal(&["prgs", "add", "--count", "1"]));
    // 1 MiB/s over ~3 MiB of rows: the copy is still running when cancelled.
    let started = json_of(&c.tidal(&["move", "slots", "--slots", "0-31", "--to", "default:2"]));
    let id = started["id"].as_u64().unwrap().to_string();
    std::thread::sleep(Duration::from_millis(700));
    json_of(&c.tidal(&["moves", "cancel", &id]));
    let m = wait_for(Duration::from_secs(30), "the move to roll back", || {
        let m = json_of(&c.tidal(&["moves", &id]));
        (m["state"] == "rolled-back").then_some(m)
    });
    assert!(m["error"].as_str().unwrap_or("").contains("cancel"), "{m}");
    let routing = c.routing(0);
    assert!((0..32).all(|s| owner(&routing, s) == "default:0"), "{routing}");
    assert_eq!(dbsize(&c), 1500);
    for i in (0..1500).step_by(97) {
        assert_eq!(cl.cmd(&["GET", &format!("k{i}")]).unwrap(), common::Value::Bulk(value.clone().into_bytes()));
    }
    // Nothing of the first attempt is left in the way of a second.
    let out = c.tidal(&["move", "slots", "--slots", "0-31", "--to", "default:2", "--wait"]);
    let m = json_of(&out);
    assert_eq!(m["state"], "done", "{m}");
    assert_eq!(dbsize(&c), 1500);
}

/// SIGKILL the node `victim` picks while a slot move copies, under a
/// verified load: the move finishes or rolls back (resumed from the
/// journal by whichever node leads the control plane), the routing table
/// agrees with how it ended, and no acknowledged write is lost.
fn sigkill_mid_move(victim: impl Fn(&Cluster) -> Option<u64>) {
    let mut c = Cluster::start(3, &["--prgs", "2", "--slots", "128", "--move-rate-mb", "2"]);
    let mut cl = c.client(0);
    let value = "y".repeat(2048);
    for i in 0..2000 {
        cl.cmd(&["SET", &format!("seed{i}"), &value]).unwrap();
    }
    let load = bench(&c, 14, 3000);
    json_of(&c.tidal(&["prgs", "add", "--count", "1"]));
    wait_for(Duration::from_secs(30), "default:2 to elect a leader", || c.leader_of("default:2"));
    let id = json_of(&c.tidal(&["move", "slots", "--slots", "0-63", "--to", "default:2"]))["id"]
        .as_u64()
        .unwrap()
        .to_string();
    std::thread::sleep(Duration::from_millis(800));
    let killed = (victim(&c).expect("a node to kill") - 1) as usize;
    c.kill(killed);
    let ask = (killed + 1) % 3;
    let m = wait_for(Duration::from_secs(90), "the move to finish without the killed node", || {
        let (code, body) = http_get(&c.nodes[ask].http, &format!("/api/v1/moves/{id}")).ok()?;
        let m: Value = serde_json::from_str(&body).ok()?;
        (code == 200 && (m["state"] == "done" || m["state"] == "rolled-back")).then_some(m)
    });
    c.spawn(killed);
    let out = load.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let s: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    for k in ["lost", "stale", "phantom"] {
        assert_eq!(s["verify"][k], 0, "{k} after move {m}: {}\n{stderr}", s["verify"]);
    }
    c.wait_all_ready(Duration::from_secs(60));
    let owner_now = if m["state"] == "done" { "default:2" } else { "default:0" };
    let routing = wait_for(Duration::from_secs(10), "the routing table to agree", || {
        let r = c.routing(killed);
        (owner(&r, 0) == owner_now && owner(&r, 63) == owner_now).then_some(r)
    });
    assert_eq!(owner(&routing, 64), "default:1");
    for i in 0..3 {
        let mut cl = c.client(i);
        for k in (0..2000).step_by(37) {
            let got = cl.cmd(&["GET", &format!("seed{k}")]).unwrap();
            assert_eq!(got, common::Value::Bulk(value.clone().into_bytes()), "seed{k} from node {}", i + 1);
        }
    }
}

/// The next control-plane leader resumes the move from its journal.
#[test]
fn a_move_survives_the_control_plane_leader_dying() {
    sigkill_mid_move(|c| c.cp_leader());
}

#[test]
fn a_move_survives_the_source_leader_dying() {
    sigkill_mid_move(|c| c.leader_of("default:0"));
}

#[test]
fn a_move_survives_the_target_leader_dying() {
    sigkill_mid_move(|c| c.leader_of("default:2"));
}

/// SIGKILL the node receiving a replica while it catches up by snapshot
/// (the PRG's log is purged past its start), then restart it: the move
/// finishes or rolls back, and every key reads back from every member.
#[test]
fn a_replica_move_survives_its_target_dying_during_the_snapshot() {
    let mut c =
        Cluster::start(4, &["--prgs", "1", "--slots", "32", "--snapshot-every", "50", "--keep-after-snapshot", "5"]);
    let members: Vec<u64> = wait_for(Duration::from_secs(30), "default:0 placed", || {
        let g = (0..4).find_map(|i| c.group_on(i, "default:0"))?;
        let m: Vec<u64> = g["members"].as_array()?.iter().filter_map(Value::as_u64).collect();
        (m.len() == 3).then_some(m)
    });
    let spare = (1..=4).find(|n| !members.contains(n)).unwrap();
    let mut cl = c.client((members[0] - 1) as usize);
    let value = "z".repeat(16 << 10);
    for i in 0..600 {
        cl.cmd(&["SET", &format!("big{i}"), &value]).unwrap();
    }
    let from = members[1];
    let id = json_of(&c.tidal(&[
        "move",
        "replica",
        "--prg",
        "default:0",
        "--from",
        &from.to_string(),
        "--to",
        &spare.to_string(),
    ]))["id"]
        .as_u64()
        .unwrap()
        .to_string();
    std::thread::sleep(Duration::from_millis(300));
    let target = (spare - 1) as usize;
    c.kill(target);
    std::thread::sleep(Duration::from_secs(1));
    c.spawn(target);
    let m = wait_for(Duration::from_secs(120), "the replica move to finish", || {
        let (code, body) = http_get(&c.nodes[0].http, &format!("/api/v1/moves/{id}")).ok()?;
        let m: Value = serde_json::from_str(&body).ok()?;
        (code == 200 && (m["state"] == "done" || m["state"] == "rolled-back")).then_some(m)
    });
    c.wait_all_ready(Duration::from_secs(60));
    let now: Vec<u64> = if m["state"] == "done" {
        members.iter().copied().filter(|n| *n != from).chain([spare]).collect()
    } else {
        members.clone()
    };
    for n in &now {
        let i = (*n - 1) as usize;
        wait_for(Duration::from_secs(60), "every member to catch up", || {
            let g = c.group_on(i, "default:0")?;
            (g["appliedIndex"].as_u64()? > 50).then_some(())
        });
        let mut cl = c.client(i);
        for k in (0..600).step_by(41) {
            assert_eq!(cl.cmd(&["GET", &format!("big{k}")]).unwrap(), common::Value::Bulk(value.clone().into_bytes()));
        }
    }
}

#[test]
fn leadership_moves_on_request() {
    let c = Cluster::start(3, &["--prgs", "1", "--slots", "16"]);
    let prgs = c.groups(0).unwrap();
    let g = prgs.as_array().unwrap().iter().find(|g| g["id"] == "default:0").unwrap().clone();
    let leader = g["leader"].as_u64().unwrap();
    let to = (1..=3).find(|n| *n != leader).unwrap();
    let out = c.tidal(&["leader", "transfer", "--prg", "default:0", "--to", &to.to_string()]);
    assert_eq!(json_of(&out)["leader"], to, "{}", String::from_utf8_lossy(&out.stderr));
    let mut cl = c.client(0);
    assert_eq!(cl.cmd(&["SET", "after", "transfer"]).unwrap(), common::Value::Simple("OK".into()));
    // Not a member: refused, nothing changes.
    let (code, body) = http(&c.nodes[0].http, "POST", "/api/v1/prgs/default:0/leader", br#"{"to":9}"#).unwrap();
    assert_eq!(code, 404, "{body}");
}

/// Every bad request is refused with a clear status and changes nothing.
#[test]
fn bad_moves_are_refused_and_change_nothing() {
    let c = Cluster::start(3, &["--prgs", "2", "--slots", "64"]);
    let post = |body: &str| http(&c.nodes[1].http, "POST", "/api/v1/moves", body.as_bytes()).unwrap();
    let before = c.routing(1);
    for (body, want) in [
        (r#"{"tenant":"default","slots":"0-3","to":"default:9"}"#, 404),
        (r#"{"tenant":"nope","slots":"0-3","to":"nope:1"}"#, 404),
        (r#"{"tenant":"default","slots":"0-3","to":"other:1"}"#, 400),
        (r#"{"tenant":"default","slots":"64","to":"default:1"}"#, 400),
        (r#"{"tenant":"default","slots":"3-1","to":"default:1"}"#, 400),
        (r#"{"tenant":"default","slots":"30-40","to":"default:1"}"#, 409),
        (r#"{"tenant":"default","slots":"40-41","to":"default:1"}"#, 409),
        (r#"{"tenant":"default","slots":"0-3","from":"default:1","to":"default:0"}"#, 409),
        (r#"{"tenant":"default","slots":[1,2],"to":"default:1","extra":1}"#, 400),
        ("not json", 400),
    ] {
        let (code, resp) = post(body);
        assert_eq!(code, want, "{body}: {resp}");
        assert!(resp.contains("error"), "{resp}");
    }
    // A second move of slots already moving is refused.
    let (code, _) = post(r#"{"tenant":"default","slots":"0-3","to":"default:1"}"#);
    assert_eq!(code, 202);
    let (code, resp) = post(r#"{"tenant":"default","slots":"2-5","to":"default:1"}"#);
    assert_eq!(code, 409, "{resp}");
    for (path, body, want) in [
        ("/api/v1/tenants/nope/prgs", r#"{"count":1}"#, 404),
        ("/api/v1/tenants/default/prgs", r#"{"count":0}"#, 400),
        ("/api/v1/tenants/default/prgs", r#"{"count":1,"members":[1,2]}"#, 400),
        ("/api/v1/tenants/default/prgs", r#"{"count":1,"members":[1,2,7]}"#, 404),
        ("/api/v1/moves/999/cancel", "", 404),
    ] {
        let (code, resp) = http(&c.nodes[1].http, "POST", path, body.as_bytes()).unwrap();
        assert_eq!(code, want, "{path} {body}: {resp}");
    }
    let after = c.routing(1);
    assert_eq!(after["tenants"], before["tenants"]);
    // The CLI reports refusals as bad usage.
    let out = c.tidal(&["move", "slots", "--slots", "x", "--to", "default:1"]);
    assert_eq!(out.status.code(), Some(64), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Move a PRG's replica, its leader's included, onto a fourth node while
/// clients read and write with verification: the PRG ends on the new
/// members, the old node stops and purges its replica (and does not bring
/// it back after a restart), and nothing acknowledged is lost.
#[test]
fn a_replica_moves_to_another_node_under_verified_load() {
    let mut c = Cluster::start(4, &["--prgs", "1", "--slots", "64"]);
    let members: Vec<u64> = wait_for(Duration::from_secs(30), "default:0 placed", || {
        let g = c.group_on(0, "default:0").or_else(|| c.group_on(1, "default:0"))?;
        let m: Vec<u64> = g["members"].as_array()?.iter().filter_map(Value::as_u64).collect();
        (m.len() == 3).then_some(m)
    });
    let spare = (1..=4).find(|n| !members.contains(n)).unwrap();
    let leader = wait_for(Duration::from_secs(30), "a leader", || {
        let i = (members[0] - 1) as usize;
        c.group_on(i, "default:0")?["leader"].as_u64()
    });
    let load = bench(&c, 10, 2000);
    std::thread::sleep(Duration::from_secs(2));
    let out = c.tidal(&[
        "move",
        "replica",
        "--prg",
        "default:0",
        "--from",
        &leader.to_string(),
        "--to",
        &spare.to_string(),
        "--wait",
    ]);
    let m = json_of(&out);
    assert_eq!(m["state"], "done", "{m}");
    // The learner took what the load had written: the move counts it.
    assert!(m["bytes"].as_u64().unwrap_or(0) > 0, "{m}");
    assert_clean(load.wait_with_output().unwrap());

    let want: Vec<u64> = members.iter().copied().filter(|n| *n != leader).chain([spare]).collect();
    let old = (leader - 1) as usize;
    wait_for(Duration::from_secs(30), "the old replica to be purged", || {
        c.group_on(old, "default:0").is_none().then_some(())
    });
    let g = wait_for(Duration::from_secs(30), "the new replica to vote", || {
        let g = c.group_on((spare - 1) as usize, "default:0")?;
        let mut m: Vec<u64> = g["members"].as_array()?.iter().filter_map(Value::as_u64).collect();
        m.sort_unstable();
        let mut w = want.clone();
        w.sort_unstable();
        (m == w).then_some(g)
    });
    assert!(g["leader"].as_u64().is_some_and(|l| l != leader), "{g}");
    // A restart does not bring the purged replica back.
    c.kill(old);
    c.spawn(old);
    c.wait_ready(old, Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(1));
    assert!(c.group_on(old, "default:0").is_none(), "{:?}", c.groups(old));

    // Bad replica moves change nothing.
    let post = |body: String| http(&c.nodes[0].http, "POST", "/api/v1/moves", body.as_bytes()).unwrap();
    let r = |from: u64, to: u64| format!(r#"{{"kind":"replica","prg":"default:0","from":{from},"to":{to}}}"#);
    assert_eq!(post(r(want[0], want[1])).0, 409, "to a node that already holds it");
    assert_eq!(post(r(leader, want[0])).0, 409, "from a node that holds none");
    assert_eq!(post(r(want[0], 9)).0, 404, "to an unknown node");
    assert_eq!(post(r#"{"kind":"replica","prg":"default:7","from":1,"to":2}"#.to_string()).0, 404);
}

/// One SCAN call: the next cursor and the keys of the page.
fn scan_step(cl: &mut common::Client, cursor: &str, count: usize) -> (String, Vec<String>) {
    match cl.cmd(&["SCAN", cursor, "COUNT", &count.to_string()]).unwrap() {
        common::Value::Array(parts) => match parts.as_slice() {
            [common::Value::Bulk(next), common::Value::Array(keys)] => {
                let keys = keys
                    .iter()
                    .map(|k| match k {
                        common::Value::Bulk(b) => String::from_utf8(b.clone()).unwrap(),
                        other => panic!("SCAN key {other:?}"),
                    })
                    .collect();
                (String::from_utf8(next.clone()).unwrap(), keys)
            }
            other => panic!("SCAN reply {other:?}"),
        },
        other => panic!("SCAN reply {other:?}"),
    }
}

/// A SCAN cursor names a slot, not a PRG: a scan that is part-way through
/// the second PRG's slots when the rest of them move into the first PRG
/// (already scanned, by PRG order) still returns every key, and each once.
#[test]
fn a_scan_that_spans_a_move_returns_every_key_once() {
    let c = Cluster::start(3, &["--prgs", "2", "--slots", "64"]);
    let mut cl = c.client(0);
    let all: std::collections::BTreeSet<String> = (0..600).map(|i| format!("s{i}")).collect();
    for k in &all {
        assert_eq!(cl.cmd(&["SET", k, "v"]).unwrap(), common::Value::Simple("OK".into()));
    }
    // About 350 of 600 keys in: into the slots of default:1 (32-63).
    let (cursor, mut seen) = scan_step(&mut cl, "0", 350);
    assert_ne!(cursor, "0");
    let m = json_of(&c.tidal(&["move", "slots", "--slots", "44-63", "--to", "default:0", "--wait"]));
    assert_eq!(m["state"], "done", "{m}");
    wait_for(Duration::from_secs(10), "node 1 to route the moved slots", || {
        (owner(&c.routing(0), 63) == "default:0").then_some(())
    });
    let mut cursor = cursor;
    while cursor != "0" {
        let (next, keys) = scan_step(&mut cl, &cursor, 100);
        seen.extend(keys);
        cursor = next;
    }
    let distinct: std::collections::BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(distinct, all, "keys missed by the scan");
    assert_eq!(seen.len(), all.len(), "keys returned twice");
}
