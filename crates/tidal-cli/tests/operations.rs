//! Scaling operations on real clusters: `tidal scale --wait` grows a
//! cluster onto standby nodes and doubles a tenant's PRGs while a client
//! writes; a gate that never passes and a failed phase roll back; cancel
//! stops an operation; a control-plane leader killed mid-operation leaves
//! it to the next one, which finishes it. An armed shrink plan drains PRGs
//! the same way; a cancel halfway or a failure puts everything back, and a
//! killed control-plane leader does not stop it.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{http, http_get, json_of, owner, wait_for, Cluster, Value};

/// Set fail point `name` on every running node.
fn set_all(c: &Cluster, name: &str, actions: &str) {
    for i in (0..c.nodes.len()).filter(|i| c.nodes[*i].child.is_some()) {
        let path = format!("/api/v1/debug/failpoints/{name}");
        let (code, body) = http(&c.nodes[i].http, "PUT", &path, actions.as_bytes()).unwrap();
        assert_eq!(code, 200, "{name}={actions} on node {}: {body}", i + 1);
    }
}

fn seed(c: &Cluster, keys: usize) {
    let mut cl = c.client(0);
    for k in 0..keys {
        assert_eq!(cl.cmd(&["SET", &format!("seed{k}"), &format!("v{k}")]).unwrap(), Value::Simple("OK".into()));
    }
}

/// Every running node counts `keys` seeded keys plus `extra`, and reads a
/// sample of the seeded ones back.
fn check_data(c: &Cluster, keys: usize, extra: usize) {
    for i in (0..c.nodes.len()).filter(|i| c.nodes[*i].child.is_some()) {
        let mut cl = c.client(i);
        let got = cl.cmd(&["DBSIZE"]).unwrap();
        if got != Value::Int((keys + extra) as i64) {
            for k in 0..c.nodes.len() {
                for p in 0..8 {
                    eprintln!("node {} default:{p}: {:?}", k + 1, c.group_on(k, &format!("default:{p}")));
                }
            }
            eprintln!("routing {:#}", c.routing(i));
        }
        assert_eq!(got, Value::Int((keys + extra) as i64), "DBSIZE on node {}", i + 1);
        for k in (0..keys).step_by(37) {
            let got = cl.cmd(&["GET", &format!("seed{k}")]).unwrap();
            assert_eq!(got, Value::Bulk(format!("v{k}").into_bytes()), "seed{k} on node {}", i + 1);
        }
    }
}

/// A client writing new keys until told to stop (or for at most 120 s):
/// how many writes were acknowledged, and every error it saw.
struct Writer {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<(usize, Vec<String>)>,
}

impl Writer {
    fn start(addr: &str) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let (s, addr) = (stop.clone(), addr.to_string());
        let handle = std::thread::spawn(move || {
            let mut cl = common::resp::Client::connect(&addr).unwrap();
            let (mut acked, mut errors) = (0, Vec::new());
            let deadline = Instant::now() + Duration::from_secs(120);
            while !s.load(Ordering::Relaxed) && Instant::now() < deadline {
                let sent = std::time::SystemTime::now();
                match cl.cmd(&["SET", &format!("w{acked}"), &format!("x{acked}")]) {
                    Ok(Value::Simple(ok)) if ok == "OK" => acked += 1,
                    other => errors.push(format!("w{acked} sent at {sent:?}: {other:?}")),
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            (acked, errors)
        });
        Writer { stop, handle }
    }

    fn finish(self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap()
    }
}

fn operation(c: &Cluster, id: u64) -> serde_json::Value {
    let (code, body) = http_get(&c.nodes[0].http, &format!("/api/v1/operations/{id}")).unwrap();
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn finished_operation(c: &Cluster, id: u64, timeout: Duration) -> serde_json::Value {
    wait_for(timeout, &format!("operation {id} to finish"), || {
        let i = (0..c.nodes.len()).find(|i| c.nodes[*i].child.is_some())?;
        let (code, body) = http_get(&c.nodes[i].http, &format!("/api/v1/operations/{id}")).ok()?;
        let o: serde_json::Value = serde_json::from_str(&body).ok()?;
        (code == 200 && o["status"] != "running" && o["status"] != "rolling_back").then_some(o)
    })
}

fn prg_count(c: &Cluster) -> usize {
    c.routing(0)["placements"].as_array().map_or(0, |p| p.len())
}

/// Start a scale operation through the API; its id.
fn start(c: &Cluster, body: &str) -> u64 {
    let (code, resp) = http(&c.nodes[1].http, "POST", "/api/v1/clusters/tidal/scale", body.as_bytes()).unwrap();
    assert_eq!(code, 202, "{resp}");
    let v: serde_json::Value = serde_json::from_str(&resp).unwrap();
    v["id"].as_u64().unwrap()
}

#[test]
fn a_scale_up_onto_standby_nodes_runs_as_one_operation_while_a_client_writes() {
    let mut c = Cluster::start(3, &["--prgs", "4", "--slots", "64"]);
    seed(&c, 300);
    for _ in 0..2 {
        let i = c.add_joiner();
        c.wait_ready(i, Duration::from_secs(60));
    }
    c.wait_cp_voters(5);
    let writer = Writer::start(&c.nodes[2].redis);
    let dry = json_of(&c.tidal(&["scale", "--nodes", "5", "--prgs", "default=8", "--dry-run"]));
    let version = dry["cpVersion"].as_u64().unwrap().to_string();
    let out = c.tidal(&["scale", "--nodes", "5", "--prgs", "default=8", "--cp-version", &version, "--wait"]);
    let (acked, errors) = writer.finish();
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let op = json_of(&out);
    assert_eq!(op["status"], "succeeded", "{op:#}");
    assert_eq!(op["phase"], "done");
    // What ran is what the dry run showed.
    assert_eq!(op["plan"], dry, "{op:#}");
    let phases: Vec<&str> = op["phaseTimes"].as_array().unwrap().iter().map(|p| p["phase"].as_str().unwrap()).collect();
    assert_eq!(
        phases,
        ["preflight", "add-nodes", "create-prgs", "move-slots", "move-replicas", "leaders", "validate"],
        "{op:#}"
    );
    let steps = op["stepList"].as_array().unwrap();
    assert!(steps.iter().all(|s| s["state"] == "done"), "{op:#}");
    assert_eq!(steps.len(), dry["slotMoves"].as_array().unwrap().len() + dry["replicaMoves"].as_array().unwrap().len());
    // The layout the plan aimed at: 8 PRGs of 8 slots, replicas on every node.
    let routing = c.routing(0);
    assert_eq!(prg_count(&c), 8, "{routing:#}");
    for p in 0..8 {
        let owned = (0..64).filter(|s| owner(&routing, *s) == format!("default:{p}")).count();
        assert_eq!(owned, 8, "default:{p} in {routing:#}");
    }
    for i in 3..5 {
        let groups = c.groups(i).unwrap();
        assert!(groups.as_array().is_some_and(|g| !g.is_empty()), "node {} hosts nothing: {groups}", i + 1);
    }
    assert!(errors.is_empty(), "the client saw errors: {errors:?}");
    assert!(acked > 0);
    check_data(&c, 300, acked);
    let status = json_of(&c.tidal(&["status"]));
    assert!(status.is_object());
    let (_, body) = http_get(&c.nodes[3].http, "/api/v1/clusters/tidal/status").unwrap();
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status["scaling_status"], "stable", "{status}");
    assert_eq!(status["last_operation"]["status"], "succeeded", "{status}");
    // The list has it, and text for people names every phase.
    let text = c.tidal_text(&["operations", &op["id"].to_string()]);
    assert!(text.contains("succeeded") && text.contains("move-slots"), "{text}");
    // A stale dry run is refused, and nothing starts.
    let stale = c.tidal(&["scale", "--prgs", "default=9", "--cp-version", &version]);
    assert_eq!(stale.status.code(), Some(64), "{}", String::from_utf8_lossy(&stale.stderr));
    assert_eq!(prg_count(&c), 8);
}

#[test]
fn a_failed_phase_rolls_back_and_a_gate_that_never_passes_fails_the_operation() {
    let c = Cluster::start(3, &["--prgs", "2", "--slots", "16"]);
    seed(&c, 100);
    // A phase that fails after the new PRGs exist: they are removed again.
    set_all(&c, "operation/after-create-prgs", "return");
    let id = start(&c, r#"{"operation":"scale_out","prgs":{"default":4}}"#);
    let op = finished_operation(&c, id, Duration::from_secs(60));
    assert_eq!(op["status"], "rolled_back", "{op:#}");
    assert!(op["error"].as_str().unwrap().contains("operation/after-create-prgs"), "{op:#}");
    let texts: Vec<&str> = op["events"].as_array().unwrap().iter().map(|e| e["text"].as_str().unwrap()).collect();
    assert!(texts.iter().any(|t| t.starts_with("created 2 PRGs")), "{texts:?}");
    assert!(texts.iter().any(|t| t.starts_with("removed its 2 new PRGs")), "{texts:?}");
    wait_for(Duration::from_secs(20), "the routing to lose the new PRGs", || (prg_count(&c) == 2).then_some(()));
    // The nodes let go of the removed groups.
    wait_for(Duration::from_secs(20), "the removed groups to stop", || {
        (0..3).all(|i| c.group_on(i, "default:2").is_none() && c.group_on(i, "default:3").is_none()).then_some(())
    });
    set_all(&c, "operation/after-create-prgs", "off");

    // A gate that never passes: the operation fails at pre-flight, with why.
    set_all(&c, "operation/gate", "return");
    let id = start(&c, r#"{"operation":"scale_out","prgs":{"default":4},"gate_timeout_ms":1000}"#);
    let op = finished_operation(&c, id, Duration::from_secs(60));
    assert_eq!(op["status"], "rolled_back", "{op:#}");
    let error = op["error"].as_str().unwrap();
    assert!(error.contains("gate 'pre-flight' did not pass") && error.contains("fail point"), "{op:#}");
    // /why says so too, on every node.
    let want = format!("operation {id} ended rolled-back: gate 'pre-flight'");
    wait_for(Duration::from_secs(10), "/why to name the failed gate", || {
        let (_, why) = http_get(&c.nodes[2].http, "/why").ok()?;
        why.contains(&want).then_some(())
    });
    set_all(&c, "operation/gate", "off");
    // Nothing changed, and the next operation takes new PRG ids.
    assert_eq!(prg_count(&c), 2);
    check_data(&c, 100, 0);
    let id = start(&c, r#"{"operation":"scale_out","prgs":{"default":4}}"#);
    let op = finished_operation(&c, id, Duration::from_secs(90));
    assert_eq!(op["status"], "succeeded", "{op:#}");
    let prgs: Vec<String> = op["plan"]["newPrgs"].as_array().unwrap().iter().map(|p| p["prg"].to_string()).collect();
    assert_eq!(prgs, ["\"default:4\"", "\"default:5\""]);
    check_data(&c, 100, 0);
}

#[test]
fn cancel_stops_an_operation_and_a_second_scale_waits_its_turn() {
    let c = Cluster::start(3, &["--prgs", "2", "--slots", "16"]);
    set_all(&c, "operation/gate", "return");
    let id = start(&c, r#"{"operation":"scale_out","prgs":{"default":4},"gate_timeout_ms":600000}"#);
    wait_for(Duration::from_secs(20), "the operation to wait at its gate", || {
        let o = operation(&c, id);
        o["events"].as_array()?.iter().any(|e| e["text"].as_str().is_some_and(|t| t.contains("waits"))).then_some(())
    });
    // One operation at a time.
    let (code, body) = http(&c.nodes[0].http, "POST", "/api/v1/tenants/default/scale", br#"{"prgs":3}"#).unwrap();
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("is running"), "{body}");
    let out = c.tidal(&["operations", "cancel", &id.to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let op = finished_operation(&c, id, Duration::from_secs(30));
    assert_eq!(op["status"], "rolled_back", "{op:#}");
    assert_eq!(op["cancelRequested"], true);
    let (code, _) = http(&c.nodes[0].http, "POST", &format!("/api/v1/operations/{id}/cancel"), b"").unwrap();
    assert_eq!(code, 409);
    let (code, _) = http(&c.nodes[0].http, "POST", "/api/v1/operations/999/cancel", b"").unwrap();
    assert_eq!(code, 404);
    assert_eq!(prg_count(&c), 2);
}

#[test]
fn a_killed_control_plane_leader_leaves_the_operation_to_the_next_one() {
    // Moves paced slowly enough that the operation is still moving slots
    // when the control-plane leader dies.
    let mut c = Cluster::start(3, &["--prgs", "2", "--slots", "16", "--move-rate-mb", "1"]);
    let value = "z".repeat(8192);
    let mut cl = c.client(0);
    for k in 0..600 {
        assert_eq!(cl.cmd(&["SET", &format!("seed{k}"), &value]).unwrap(), Value::Simple("OK".into()));
    }
    let id = start(&c, r#"{"operation":"scale_out","prgs":{"default":4}}"#);
    wait_for(Duration::from_secs(60), "the operation to move slots", || {
        let o = operation(&c, id);
        (o["phase"] == "move-slots" && o["bytesMoved"].as_u64()? > 0).then_some(())
    });
    let leader = c.cp_leader().unwrap();
    let i = (leader - 1) as usize;
    c.kill(i);
    std::thread::sleep(Duration::from_secs(2));
    c.spawn(i);
    let op = finished_operation(&c, id, Duration::from_secs(120));
    assert_eq!(op["status"], "succeeded", "{op:#}");
    // Each step's move ran once, unless the crash rolled one back, which
    // its retry then finished.
    for s in op["stepList"].as_array().unwrap() {
        assert_eq!(s["state"], "done", "{op:#}");
        assert!(s["moves"].as_array().unwrap().len() <= 2, "{op:#}");
    }
    c.wait_all_ready(Duration::from_secs(60));
    assert_eq!(prg_count(&c), 4);
    for i in 0..3 {
        let mut cl = c.client(i);
        assert_eq!(cl.cmd(&["DBSIZE"]).unwrap(), Value::Int(600), "node {}", i + 1);
    }
}

fn shrink_plan(c: &Cluster, id: &str) -> serde_json::Value {
    json_of(&c.tidal(&["shrink-plan", "show", id]))
}

/// Wait for plan `id` to reach `state`.
fn plan_reaches(c: &Cluster, id: &str, state: &str, timeout: Duration) -> serde_json::Value {
    wait_for(timeout, &format!("plan {id} to be {state}"), || {
        let (code, body) = http_get(&c.nodes[0].http, &format!("/admin/shrink-plan/{id}")).ok()?;
        let p: serde_json::Value = serde_json::from_str(&body).ok()?;
        (code == 200 && p["state"] == state).then_some(p)
    })
}

/// An armed shrink plan drains two of four PRGs into the other two while a
/// client writes, deletes them, and is Completed: every key reads back.
#[test]
fn an_armed_shrink_plan_drains_prgs_while_a_client_writes() {
    let c = Cluster::start(3, &["--prgs", "4", "--slots", "256"]);
    seed(&c, 300);
    let plan = json_of(&c.tidal(&["shrink-plan", "create", "--prgs", "default=2", "--id", "drain"]));
    assert_eq!(plan["state"], "Draft", "{plan:#}");
    let gone: Vec<String> =
        plan["remove_prgs"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().into()).collect();
    assert_eq!(gone.len(), 2);
    let writer = Writer::start(&c.nodes[2].redis);
    let armed = json_of(&c.tidal(&["shrink-plan", "arm", "drain"]));
    let op_id = armed["id"].as_u64().expect("an operation id");
    // One plan armed at a time, and nothing else runs meanwhile.
    let other = c.tidal(&["shrink-plan", "create", "--prgs", "default=3", "--id", "other", "--dry-run"]);
    assert!(other.status.success());
    let done = plan_reaches(&c, "drain", "Completed", Duration::from_secs(120));
    let (acked, errors) = writer.finish();
    let op = finished_operation(&c, op_id, Duration::from_secs(10));
    assert_eq!((op["type"].as_str(), op["status"].as_str()), (Some("scale_in"), Some("succeeded")), "{op:#}");
    assert_eq!(done["operation"].as_u64(), Some(op_id));
    let routing = c.routing(0);
    assert_eq!(prg_count(&c), 2, "{routing:#}");
    for p in &gone {
        assert!((0..256).all(|s| owner(&routing, s) != *p), "{p} still owns slots: {routing:#}");
    }
    assert!(errors.is_empty(), "the client saw errors: {errors:?}");
    assert!(acked > 0);
    check_data(&c, 300, acked);
    assert_eq!(c.tidal(&["shrink-plan", "arm", "drain"]).status.code(), Some(64), "a completed plan arms again");
}

/// Cancelling an armed plan halfway undoes it: once its first slot batch
/// has moved, a cancel stops the operation, another moves every slot
/// back, and the plan is RolledBack with the layout it started from.
#[test]
fn cancelling_an_armed_shrink_plan_puts_the_layout_back() {
    let c = Cluster::start(3, &["--prgs", "4", "--slots", "1024", "--max-moves", "1"]);
    seed(&c, 200);
    let before = c.routing(0);
    let sets = |r: &serde_json::Value| -> Vec<(String, Vec<u64>)> {
        let mut out: Vec<(String, Vec<u64>)> = r["placements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let mut m: Vec<u64> = p["members"].as_array().unwrap().iter().map(|n| n.as_u64().unwrap()).collect();
                m.sort_unstable();
                (p["prg"].as_str().unwrap().to_string(), m)
            })
            .collect();
        out.sort();
        out
    };
    let plan = json_of(&c.tidal(&["shrink-plan", "create", "--prgs", "default=2", "--id", "undo-me"]));
    assert!(plan["slot_moves"].as_array().unwrap().len() >= 8, "{plan:#}");
    let armed = json_of(&c.tidal(&["shrink-plan", "arm", "undo-me"]));
    let op_id = armed["id"].as_u64().unwrap();
    wait_for(Duration::from_secs(60), "a slot batch to move", || {
        let op = operation(&c, op_id);
        op["stepList"].as_array()?.iter().any(|s| s["state"] == "done").then_some(())
    });
    let text = c.tidal_text(&["shrink-plan", "cancel", "undo-me"]);
    assert!(text.contains("undo-me"), "{text}");
    assert_eq!(c.tidal(&["shrink-plan", "cancel", "undo-me"]).status.code(), Some(64), "cancelled twice");
    let plan = plan_reaches(&c, "undo-me", "RolledBack", Duration::from_secs(120));
    assert!(plan["undo_attempts"].as_u64().unwrap() >= 1, "{plan:#}");
    let undo = operation(&c, plan["operation"].as_u64().unwrap());
    assert_eq!(
        (undo["type"].as_str(), undo["status"].as_str()),
        (Some("scale_in_undo"), Some("succeeded")),
        "{undo:#}"
    );
    let after = c.routing(0);
    assert_eq!(after["tenants"], before["tenants"], "the slots are back");
    assert_eq!(sets(&after), sets(&before), "the replicas are back");
    check_data(&c, 200, 0);
    let _ = shrink_plan(&c, "undo-me");
}

/// A shrink plan whose operation fails after its slots moved (a fail point
/// after the move-slots phase) is undone as a whole and RolledBack; a
/// plan armed again survives the control-plane leader's death: the next
/// leader carries the operation on and completes the plan.
#[test]
fn a_failed_shrink_is_undone_and_a_killed_control_plane_leader_does_not_stop_one() {
    let mut c = Cluster::start(3, &["--prgs", "4", "--slots", "256"]);
    seed(&c, 200);
    let before = c.routing(0);
    set_all(&c, "operation/after-move-slots", "1*return");
    json_of(&c.tidal(&["shrink-plan", "create", "--prgs", "default=2", "--id", "fails"]));
    json_of(&c.tidal(&["shrink-plan", "arm", "fails"]));
    let plan = plan_reaches(&c, "fails", "RolledBack", Duration::from_secs(120));
    assert!(plan["error"].as_str().is_some_and(|e| e.contains("operation/after-move-slots")), "{plan:#}");
    assert_eq!(c.routing(0)["tenants"], before["tenants"], "the slots are back");
    assert_eq!(prg_count(&c), 4);
    set_all(&c, "operation/after-move-slots", "off");
    check_data(&c, 200, 0);

    json_of(&c.tidal(&["shrink-plan", "create", "--prgs", "default=2", "--id", "again"]));
    json_of(&c.tidal(&["shrink-plan", "arm", "again"]));
    let leader = c.cp_leader().unwrap();
    let i = (leader - 1) as usize;
    c.kill(i);
    std::thread::sleep(Duration::from_secs(2));
    c.spawn(i);
    c.wait_all_ready(Duration::from_secs(60));
    plan_reaches(&c, "again", "Completed", Duration::from_secs(120));
    wait_for(Duration::from_secs(20), "the routing to lose the drained PRGs", || (prg_count(&c) == 2).then_some(()));
    check_data(&c, 200, 0);
}
