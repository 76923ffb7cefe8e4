//! Draining nodes of a real cluster: SIGTERM moves a node's replicas to
//! the others while a client writes, then the node exits, with no client
//! error and every key readable; a drained node that restarts stays out
//! (not ready, hosting nothing) until undrained; a drain through the
//! admin API ends with the node exiting too; drains that would leave a
//! PRG without three voters, or that name no node, are refused and
//! change nothing.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{http, http_get, json_of, wait_for, Cluster, Value};

/// A client writing new keys through one node until told to stop (or for
/// at most 180 s): the keys acknowledged, and every error it saw.
fn writer(addr: &str, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(usize, Vec<String>)> {
    let addr = addr.to_string();
    std::thread::spawn(move || {
        let mut cl = common::resp::Client::connect(&addr).unwrap();
        let (mut acked, mut errors) = (0, Vec::new());
        let deadline = Instant::now() + Duration::from_secs(180);
        while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
            match cl.cmd(&["SET", &format!("w{acked}"), &format!("x{acked}")]) {
                Ok(Value::Simple(ok)) if ok == "OK" => acked += 1,
                other => errors.push(format!("w{acked}: {other:?}")),
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        (acked, errors)
    })
}

/// The members of every placement, from node `i`'s routing table.
fn members(c: &Cluster, i: usize) -> Vec<(String, Vec<u64>)> {
    let routing = c.routing(i);
    let placements = routing["placements"].as_array().cloned().unwrap_or_default();
    placements
        .iter()
        .map(|p| {
            let m = p["members"].as_array().unwrap().iter().map(|n| n.as_u64().unwrap()).collect();
            (p["prg"].as_str().unwrap().to_string(), m)
        })
        .collect()
}

/// Wait until node `i`'s process has exited; its exit status.
fn exited(c: &mut Cluster, i: usize, timeout: Duration) -> std::process::ExitStatus {
    let status = wait_for(timeout, &format!("node {} to exit", i + 1), || {
        c.nodes[i].child.as_mut().unwrap().try_wait().unwrap()
    });
    c.nodes[i].child = None;
    status
}

fn draining(c: &Cluster) -> serde_json::Value {
    let (code, body) = http_get(&c.nodes[0].http, "/admin/drain").unwrap();
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

#[test]
fn sigterm_drains_a_node_under_load_and_a_drained_node_stays_out_until_undrained() {
    let mut c = Cluster::start(4, &["--prgs", "4", "--slots", "256"]);
    let mut cl = c.client(0);
    for k in 0..300 {
        assert_eq!(cl.cmd(&["SET", &format!("seed{k}"), &format!("v{k}")]).unwrap(), Value::Simple("OK".into()));
    }
    let hosted: Vec<String> = members(&c, 0).into_iter().filter(|(_, m)| m.contains(&4)).map(|(p, _)| p).collect();
    assert!(!hosted.is_empty(), "node 4 hosts no replica: {:#}", c.routing(0));

    // Bad requests first: they change nothing.
    let (code, body) = http(&c.nodes[0].http, "POST", "/admin/drain", br#"{"node":9}"#).unwrap();
    assert_eq!(code, 404, "{body}");
    let (code, body) = http(&c.nodes[0].http, "POST", "/admin/drain", br#"{"node":"x"}"#).unwrap();
    assert_eq!(code, 400, "{body}");
    let (code, body) = http(&c.nodes[0].http, "POST", "/admin/drain", br#"{"node":4,"max_moves":0}"#).unwrap();
    assert_eq!(code, 400, "{body}");
    let (code, body) = http(&c.nodes[0].http, "POST", "/admin/drain/cancel", br#"{"node":4}"#).unwrap();
    assert_eq!(code, 409, "{body}");
    assert_eq!(draining(&c)["nodes"], serde_json::json!([]));
    // A dry run lists the moves: every replica of node 4, to another node.
    let dry = json_of(&c.tidal(&["drain", "4", "--dry-run"]));
    let moves = dry["plan"]["replicaMoves"].as_array().unwrap().clone();
    assert_eq!(moves.len(), hosted.len(), "{dry:#}");
    assert!(moves.iter().all(|m| m["from"] == 4 && m["to"] != 4), "{dry:#}");
    assert_eq!(draining(&c)["nodes"], serde_json::json!([]));

    // SIGTERM node 4 while a client writes through node 1.
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(&c.nodes[0].redis, stop.clone());
    std::thread::sleep(Duration::from_millis(500));
    let pid = c.nodes[3].child.as_ref().unwrap().id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = exited(&mut c, 3, Duration::from_secs(120));
    stop.store(true, Ordering::Relaxed);
    let (acked, errors) = w.join().unwrap();
    assert!(status.success(), "node 4 exited with {status}: {}", c.log(3));
    assert!(c.log(3).contains("SIGTERM: draining"), "{}", c.log(3));
    assert!(errors.is_empty(), "the client saw errors: {errors:?}");
    assert!(acked > 0);
    // Every PRG has three voters, none on node 4.
    for (prg, m) in members(&c, 0) {
        assert_eq!(m.len(), 3, "{prg}: {m:?}");
        assert!(!m.contains(&4), "{prg} still on node 4: {m:?}");
    }
    let d = draining(&c);
    assert_eq!(d["nodes"][0]["node"], 4, "{d:#}");
    assert_eq!(d["nodes"][0]["state"], "drained", "{d:#}");
    let mut cl = c.client(1);
    assert_eq!(cl.cmd(&["DBSIZE"]).unwrap(), Value::Int(300 + acked as i64));
    for k in (0..300).step_by(23) {
        assert_eq!(cl.cmd(&["GET", &format!("seed{k}")]).unwrap(), Value::Bulk(format!("v{k}").into_bytes()));
    }

    // Three active nodes are left: draining another is refused.
    let out = c.tidal(&["drain", "3"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("would leave 2 active nodes"), "{err}");

    // Node 4 restarts: it stays up, not ready, hosting nothing.
    c.spawn(3);
    wait_for(Duration::from_secs(30), "node 4 to answer /readyz", || {
        let (code, body) = http_get(&c.nodes[3].http, "/readyz").ok()?;
        (code == 503 && body.contains("draining")).then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    assert!(c.nodes[3].child.as_mut().unwrap().try_wait().unwrap().is_none(), "a restarted drained node exited");
    // Undrained, it is Active and ready again (with nothing to host yet).
    let out = c.tidal(&["drain", "4", "--cancel"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    c.wait_ready(3, Duration::from_secs(30));
    assert_eq!(draining(&c)["nodes"], serde_json::json!([]));
    // Drained through the admin API, as `tidal drain --wait` does: the
    // operation succeeds and the node exits.
    let out = c.tidal(&["drain", "4", "--wait"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let op: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((op["type"].as_str(), op["status"].as_str()), (Some("drain"), Some("succeeded")), "{op:#}");
    let status = exited(&mut c, 3, Duration::from_secs(30));
    assert!(status.success(), "{status}");
}

/// A SIGKILLed node unheard past the self-heal delay, a control-plane
/// voter, has its replicas re-created on the other nodes, every PRG back to
/// three voters while a client writes, and its vote moved to the node that
/// had none; when it returns it purges its replicas (its `_cp` one too)
/// and stays out (Draining) until an operator decides, and restarted with
/// the same `--peers` it bootstraps no control plane.
#[test]
fn a_lost_node_is_healed_and_returns_drained() {
    let mut c = Cluster::start(4, &["--prgs", "4", "--slots", "256", "--self-heal-delay-ms", "3000"]);
    let mut cl = c.client(0);
    for k in 0..200 {
        assert_eq!(cl.cmd(&["SET", &format!("seed{k}"), &format!("v{k}")]).unwrap(), Value::Simple("OK".into()));
    }
    // Node 3 is lost: it holds replicas and a control-plane vote.
    assert!(members(&c, 0).iter().any(|(_, m)| m.contains(&3)));
    assert_eq!(c.cp_voters(0), [1, 2, 3]);
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(&c.nodes[0].redis, stop.clone());
    c.kill(2);
    let lost_at = Instant::now();
    wait_for(Duration::from_secs(90), "every PRG to have 3 voters off node 3", || {
        let m = members(&c, 0);
        m.iter().all(|(_, m)| m.len() == 3 && !m.contains(&3)).then_some(())
    });
    let healed_in = lost_at.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (acked, errors) = w.join().unwrap();
    assert!(healed_in > Duration::from_secs(3), "healed before the delay: {healed_in:?}");
    let heal = wait_for(Duration::from_secs(30), "the heal operation to finish", || {
        let (_, body) = http_get(&c.nodes[0].http, "/api/v1/operations").ok()?;
        let ops: serde_json::Value = serde_json::from_str(&body).ok()?;
        let heal = ops["operations"].as_array()?.iter().find(|o| o["type"] == "heal").cloned()?;
        (heal["status"] != "running").then_some(heal)
    });
    assert_eq!(heal["status"], "succeeded", "{heal:#}");
    // Its vote moved to node 4.
    wait_for(Duration::from_secs(30), "node 3's vote to move to node 4", || {
        (c.cp_voters(0) == [1, 2, 4]).then_some(())
    });
    // Writes through node 1 may wait out the elections node 3's loss
    // causes. One in flight to node 3 when it was killed may be UNCERTAIN
    // (the writer retries the same key); none fails otherwise, and every
    // key reads back.
    let uncertain = errors.iter().filter(|e| e.contains("UNCERTAIN")).count();
    assert!(uncertain == errors.len() && uncertain <= 3, "the client saw errors: {errors:?}");
    let mut cl = c.client(1);
    assert_eq!(cl.cmd(&["DBSIZE"]).unwrap(), Value::Int(200 + acked as i64));

    // Node 3 comes back: told its replicas and its vote are gone, it
    // purges them and stays up, not ready, Draining.
    c.spawn(2);
    wait_for(Duration::from_secs(30), "node 3 to purge its replicas", || {
        (c.groups(2)?.as_array()?.is_empty()).then_some(())
    });
    let (code, body) = http_get(&c.nodes[2].http, "/readyz").unwrap();
    assert!(code == 503 && body.contains("draining"), "{code} {body}");
    assert!(c.nodes[2].child.as_mut().unwrap().try_wait().unwrap().is_none(), "the healed node exited");
    assert_eq!(draining(&c)["nodes"][0]["state"], "drained");
    // Restarted again with the same --peers that made it a first voter,
    // it neither hosts nor bootstraps a control plane.
    c.kill(2);
    c.spawn(2);
    wait_for(Duration::from_secs(30), "node 3 to answer", || http_get(&c.nodes[2].http, "/readyz").ok());
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(c.groups(2).unwrap(), serde_json::json!([]));
    assert_eq!(c.cp_voters(2), [1, 2, 4]);
}

/// A shrink from 5 to 3 nodes: with five nodes the control plane has five
/// voters; the armed plan moves the replicas and the votes of the two
/// nodes that leave onto the three that stay while a client writes, then
/// removes them, and they stop; a node that still holds replicas is not
/// removed.
#[test]
fn a_shrink_plan_removes_nodes_once_their_replicas_moved() {
    let mut c = Cluster::start(3, &["--prgs", "4", "--slots", "256", "--shrink-auto-arm"]);
    let (four, five) = (c.add_joiner(), c.add_joiner());
    c.wait_ready(four, Duration::from_secs(60));
    c.wait_ready(five, Duration::from_secs(60));
    // With five nodes the control plane has five voters.
    wait_for(Duration::from_secs(30), "five control-plane voters", || {
        (c.cp_voters(0) == [1, 2, 3, 4, 5]).then_some(())
    });
    let mut cl = c.client(0);
    for k in 0..200 {
        assert_eq!(cl.cmd(&["SET", &format!("seed{k}"), &format!("v{k}")]).unwrap(), Value::Simple("OK".into()));
    }
    // Give nodes 4 and 5 a replica each.
    for (prg, to) in [("default:0", "4"), ("default:1", "5")] {
        let from = members(&c, 0).into_iter().find(|(p, _)| p == prg).unwrap().1[0].to_string();
        let out = c.tidal(&["move", "replica", "--prg", prg, "--from", &from, "--to", to, "--wait"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let out = c.tidal(&["remove-node", "4"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("still holds replicas"));

    let plan = json_of(&c.tidal(&["shrink-plan", "create", "--nodes", "3", "--id", "down"]));
    assert_eq!(plan["remove_nodes"], serde_json::json!([4, 5]), "{plan:#}");
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(&c.nodes[0].redis, stop.clone());
    let out = c.tidal(&["shrink-plan", "arm", "down", "--wait"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let done = wait_for(Duration::from_secs(30), "plan down to complete", || {
        let v = json_of(&c.tidal(&["shrink-plan", "show", "down"]));
        (v["state"] == "Completed").then_some(v)
    });
    assert_eq!(done["remove_nodes"], serde_json::json!([4, 5]));
    // Their votes moved off before they left: three voters again.
    assert_eq!(c.cp_voters(0), [1, 2, 3]);
    for i in [four, five] {
        let status = exited(&mut c, i, Duration::from_secs(30));
        assert!(status.success(), "node {} exited with {status}", i + 1);
        assert!(c.log(i).contains("removed from the cluster"), "{}", c.log(i));
    }
    stop.store(true, Ordering::Relaxed);
    let (acked, errors) = w.join().unwrap();
    assert!(errors.is_empty(), "the client saw errors: {errors:?}");
    for (prg, m) in members(&c, 0) {
        assert!(m.len() == 3 && m.iter().all(|n| *n <= 3), "{prg}: {m:?}");
    }
    let (_, health) = http_get(&c.nodes[0].http, "/health").unwrap();
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["nodeCount"], 3, "{health:#}");
    let mut cl = c.client(2);
    assert_eq!(cl.cmd(&["DBSIZE"]).unwrap(), Value::Int(200 + acked as i64));

    // With the policy on, scale_in may arm the plan it drafts at once.
    let ask = br#"{"operation":"scale_in","prgs":{"default":3},"auto_arm":true}"#;
    let (code, body) = http(&c.nodes[0].http, "POST", "/api/v1/clusters/tidal/scale", ask).unwrap();
    assert_eq!(code, 202, "{body}");
    wait_for(Duration::from_secs(60), "the auto-armed plan to complete", || {
        let plans = json_of(&c.tidal(&["shrink-plan", "list"]));
        let armed = plans["plans"].as_array()?.iter().find(|p| p["plan_id"] != "down")?.clone();
        (armed["state"] == "Completed").then_some(())
    });
    assert_eq!(members(&c, 0).len(), 3);
    assert_eq!(cl.cmd(&["DBSIZE"]).unwrap(), Value::Int(200 + acked as i64));
}
