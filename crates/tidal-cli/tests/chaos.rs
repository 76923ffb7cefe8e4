//! Chaos against real processes: `tidal bench --verify` records every
//! operation while the harness SIGKILLs nodes, SIGSTOPs them past the
//! election timeout, partitions the control-plane leader, stalls one
//! direction of a link, delays every link and drops connections, all
//! through a fault-injecting proxy in front of every node's peer port,
//! and while a scale-up runs. At the end nothing acknowledged may be
//! missing and the recorded history must be linearizable.
//!
//! The run lasts `TIDAL_CHAOS_SECS` seconds (60 by default) and draws its
//! faults from `TIDAL_CHAOS_SEED` (printed; random when unset), so a long
//! campaign is one command:
//!
//! ```text
//! TIDAL_CHAOS_SECS=1800 cargo test -p tidal --release --test chaos -- --nocapture
//! ```

mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::proxy::{Link, Proxy};
use common::{http, http_get, wait_for, Cluster, BIN};
use tidal_core::dice::Dice;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Election timeouts of the cluster under test (ms); a SIGSTOP lasts longer.
const ELECTION_MAX_MS: u64 = 600;

#[test]
fn no_acknowledged_write_is_lost_and_histories_stay_linearizable_under_chaos() {
    let secs = env_u64("TIDAL_CHAOS_SECS").unwrap_or(60).max(20);
    let seed = env_u64("TIDAL_CHAOS_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    eprintln!("chaos: {secs} s, seed {seed} (replay the schedule with TIDAL_CHAOS_SEED={seed})");
    let mut dice = Dice::new(seed);

    let proxy = Arc::new(Proxy::new());
    let flags = ["--prgs", "4", "--slots", "64", "--election-min-ms", "300", "--election-max-ms", "600"];
    let mut c = Cluster::start_proxied(3, &flags, proxy.clone());
    // A standby node for the scale-up to grow onto.
    let standby = c.add_joiner();
    c.wait_ready(standby, Duration::from_secs(60));

    let endpoints: Vec<&str> = c.nodes[..3].iter().map(|n| n.redis.as_str()).collect();
    let target = format!("resp://{}", endpoints.join(","));
    let duration = format!("{secs}s");
    let bench = Command::new(BIN)
        .args(["bench", "--target", &target, "--clients", "6", "--duration", &duration, "--workload", "a"])
        .args(["--keys", "2000", "--verify", "--timeout", "2s", "--json", "-"])
        .env("TIDAL_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tidal bench");

    let started = Instant::now();
    // The bench probes every endpoint before it loads (each probe bounded by
    // its 2 s --timeout) and stops if one does not answer: no fault until
    // the probes are over.
    std::thread::sleep(Duration::from_secs(3));
    let chaos_until = started + Duration::from_secs(secs.saturating_sub(12));
    let mut scale: Option<u64> = None;
    let mut log = Vec::new();
    let mut round: Vec<u64> = Vec::new();
    let ids: Vec<u64> = c.nodes.iter().map(|n| n.id).collect();
    while Instant::now() < chaos_until {
        // The scale-up starts a few seconds in and runs alongside the faults.
        if scale.is_none() && started.elapsed() > Duration::from_secs(4) {
            let body = br#"{"operation":"scale_out","target_count":4,"prgs":{"default":8},"gate_timeout_ms":20000}"#;
            let up = (0..c.nodes.len()).find(|&i| c.nodes[i].child.is_some()).unwrap();
            if let Ok((202, resp)) = http(&c.nodes[up].http, "POST", "/api/v1/clusters/tidal/scale", body) {
                let v: serde_json::Value = serde_json::from_str(&resp).unwrap();
                scale = v["id"].as_u64();
                log.push(format!("{:>5.1}s scale-up {scale:?} started", started.elapsed().as_secs_f64()));
            }
        }
        // Every kind of fault once per round, in a shuffled order.
        if round.is_empty() {
            round = (0..6).collect();
            for i in (1..round.len()).rev() {
                round.swap(i, dice.below(i as u64 + 1) as usize);
            }
        }
        let fault = round.pop().unwrap();
        let victim = dice.below(c.nodes.len() as u64) as usize;
        let hold = Duration::from_millis(1500 + dice.below(2500));
        let at = started.elapsed().as_secs_f64();
        match fault {
            0 => {
                log.push(format!("{at:>5.1}s SIGKILL node {} for {hold:?}", victim + 1));
                c.kill(victim);
                std::thread::sleep(hold);
                c.spawn(victim);
            }
            1 => {
                let hold = hold.max(Duration::from_millis(3 * ELECTION_MAX_MS));
                log.push(format!("{at:>5.1}s SIGSTOP node {} for {hold:?}", victim + 1));
                c.pause(victim, true);
                std::thread::sleep(hold);
                c.pause(victim, false);
            }
            2 => {
                let leader = c.cp_leader().unwrap_or(1);
                log.push(format!("{at:>5.1}s partition the CP leader {leader} for {hold:?}"));
                proxy.isolate(leader, ids.iter().copied());
                std::thread::sleep(hold);
                proxy.heal_all();
            }
            3 => {
                let to = ids[(victim + 1 + dice.below(ids.len() as u64 - 1) as usize) % ids.len()];
                log.push(format!("{at:>5.1}s stall {}→{to} for {hold:?}", victim + 1));
                proxy.set(victim as u64 + 1, to, Link::Stall);
                std::thread::sleep(hold);
                proxy.heal_all();
            }
            4 => {
                let delay = Duration::from_millis(20 + dice.below(80));
                log.push(format!("{at:>5.1}s delay every link {delay:?} for {hold:?}"));
                for &a in &ids {
                    for &b in &ids {
                        if a != b {
                            proxy.set(a, b, Link::Delay(delay));
                        }
                    }
                }
                std::thread::sleep(hold);
                proxy.heal_all();
            }
            _ => {
                log.push(format!("{at:>5.1}s drop every connection of node {}", victim + 1));
                for &b in &ids {
                    proxy.sever(victim as u64 + 1, b);
                }
                std::thread::sleep(hold);
            }
        }
        // Let the cluster breathe between faults.
        std::thread::sleep(Duration::from_millis(500 + dice.below(1500)));
    }
    proxy.heal_all();
    eprintln!("chaos: faults injected:\n{}", log.join("\n"));
    c.wait_all_ready(Duration::from_secs(120));

    let out = bench.wait_with_output().expect("tidal bench runs to the end");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let s: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("bench printed no JSON ({e}); seed {seed}\n{stderr}"));
    let v = &s["verify"];
    let h = &v["history"];
    eprintln!("chaos: seed {seed}: verify {v}");
    for k in ["lost", "stale", "phantom", "unverified"] {
        assert_eq!(v[k], 0, "{k}: seed {seed}\n{v}\n{stderr}");
    }
    assert_eq!(h["violations"], 0, "seed {seed}: {h}\n{stderr}");
    assert_eq!(h["unknown"], 0, "seed {seed}: {h}");
    assert!(v["acked_writes"].as_u64().unwrap() > 100, "too little got through: {v}");
    assert_eq!(out.status.code(), Some(0), "seed {seed}\n{stderr}");

    // The scale-up ended one way or the other, and the cluster converged:
    // every PRG has a leader and three voters.
    if let Some(id) = scale {
        let op = wait_for(Duration::from_secs(180), "the scale-up to end", || {
            let (code, body) = http_get(&c.nodes[0].http, &format!("/api/v1/operations/{id}")).ok()?;
            let o: serde_json::Value = serde_json::from_str(&body).ok()?;
            (code == 200 && o["status"] != "running" && o["status"] != "rolling_back").then_some(o)
        });
        eprintln!("chaos: scale-up {id} ended {} at phase {}", op["status"], op["phase"]);
        assert!(op["status"] == "succeeded" || op["status"] == "rolled_back", "seed {seed}: {op:#}");
    }
    let routing = c.routing(0);
    let placements = routing["placements"].as_array().unwrap().clone();
    wait_for(Duration::from_secs(60), "every PRG to have a leader and 3 voters", || {
        placements
            .iter()
            .all(|p| {
                let prg = p["prg"].as_str().unwrap_or_default();
                (0..c.nodes.len()).any(|i| {
                    c.group_on(i, prg)
                        .is_some_and(|g| g["leader"].is_u64() && g["members"].as_array().is_some_and(|m| m.len() == 3))
                })
            })
            .then_some(())
    });
}
