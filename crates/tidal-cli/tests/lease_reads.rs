//! Lease reads against real processes: a leader stopped (SIGSTOP) for
//! twice the election timeout, while the others elect a new leader that
//! acknowledges a write, must not answer a read sent to it afterwards
//! from its old state when it wakes. That is the stale read a lease kept
//! on a clock that stops with the process would give.

mod common;

use std::time::{Duration, Instant};

use common::{http_get, wait_for, Cluster, Value};

const ELECTION_MAX_MS: u64 = 600;
const PRG: &str = "default:0";

/// The leader of [`PRG`] as node `i` sees it.
fn leader_seen_by(c: &Cluster, i: usize) -> Option<u64> {
    c.group_on(i, PRG)?["leader"].as_u64()
}

/// Node `i`'s count of read batches confirmed `how`.
fn read_batches(c: &Cluster, i: usize, how: &str) -> u64 {
    let (_, body) = http_get(&c.nodes[i].http, "/metrics").unwrap();
    let line = format!("tidal_read_batches_total{{how=\"{how}\"}} ");
    body.lines().find_map(|l| l.strip_prefix(&line)?.trim().parse().ok()).unwrap_or(0)
}

#[test]
fn a_leader_woken_from_a_pause_past_its_lease_serves_no_stale_read() {
    let max = ELECTION_MAX_MS.to_string();
    let c = Cluster::start(3, &["--prgs", "1", "--slots", "64", "--election-min-ms", "300", "--election-max-ms", &max]);
    for round in 0..2 {
        let leader = wait_for(Duration::from_secs(30), "a leader of the PRG", || leader_seen_by(&c, 0));
        let li = c.nodes.iter().position(|n| n.id == leader).unwrap();
        let other = (li + 1) % 3;
        let key = format!("key-{round}");
        let mut writer = c.client(other);
        assert_eq!(writer.cmd(&["SET", &key, "old"]).unwrap(), Value::Simple("OK".into()));
        // Served by the leader itself, under its lease.
        let mut stale = c.client(li);
        let leased = read_batches(&c, li, "lease");
        assert_eq!(stale.cmd(&["GET", &key]).unwrap(), Value::bulk("old"));
        assert!(read_batches(&c, li, "lease") > leased, "the leader served the read under its lease");

        let stopped = Instant::now();
        c.pause(li, true);
        let new = wait_for(Duration::from_secs(30), "the others to elect a new leader", || {
            leader_seen_by(&c, other).filter(|l| *l != leader)
        });
        // Acknowledged by the new leader while the old one sleeps.
        assert_eq!(writer.cmd(&["SET", &key, "new"]).unwrap(), Value::Simple("OK".into()));
        std::thread::sleep(Duration::from_millis(2 * ELECTION_MAX_MS).saturating_sub(stopped.elapsed()));
        // Sent after the write was acknowledged; the old leader reads it
        // the moment it wakes, still believing it leads.
        stale.send_raw(&common::Client::encode(&[b"GET", key.as_bytes()])).unwrap();
        c.pause(li, false);
        assert_eq!(
            stale.read().unwrap(),
            Value::bulk("new"),
            "round {round}: node {leader} woke after {:?} (node {new} leads now) and answered from before the write",
            stopped.elapsed()
        );
    }
}

/// Node `i`'s count of reads its replicas served for READONLY connections.
fn follower_reads(c: &Cluster, i: usize) -> u64 {
    let (_, body) = http_get(&c.nodes[i].http, "/metrics").unwrap();
    body.lines().find_map(|l| l.strip_prefix("tidal_follower_reads_total ")?.trim().parse().ok()).unwrap_or(0)
}

#[test]
fn readonly_connections_read_their_followers_and_stay_linearizable() {
    let c = Cluster::start(3, &["--prgs", "1", "--slots", "64"]);
    let leader = wait_for(Duration::from_secs(30), "a leader of the PRG", || leader_seen_by(&c, 0));
    let li = c.nodes.iter().position(|n| n.id == leader).unwrap();
    let fi = (li + 1) % 3;
    let mut writer = c.client(li);
    let mut ro = c.client(fi);
    assert_eq!(ro.cmd(&["READONLY"]).unwrap(), Value::Simple("OK".into()));
    // Each write, once acknowledged, is what the follower's next read sees.
    let before = follower_reads(&c, fi);
    for i in 0..20 {
        let (k, v) = (format!("k{i}"), format!("v{i}"));
        assert_eq!(writer.cmd(&["SET", &k, &v]).unwrap(), Value::Simple("OK".into()));
        assert_eq!(ro.cmd(&["GET", &k]).unwrap(), Value::bulk(&v), "read {i} on the follower");
    }
    assert!(follower_reads(&c, fi) >= before + 20, "the follower's replica served the reads");
    // READWRITE sends reads to the leader again.
    assert_eq!(ro.cmd(&["READWRITE"]).unwrap(), Value::Simple("OK".into()));
    let served = follower_reads(&c, fi);
    assert_eq!(ro.cmd(&["GET", "k0"]).unwrap(), Value::bulk("v0"));
    assert_eq!(follower_reads(&c, fi), served);

    // Many clients on every node, READONLY, under a verified load: no
    // read may miss a write acknowledged before it began.
    let target = format!("resp://{}", c.nodes.iter().map(|n| n.redis.as_str()).collect::<Vec<_>>().join(","));
    let out = std::process::Command::new(common::BIN)
        .args(["bench", "--target", &target, "--readonly", "--verify", "--workload", "a", "--clients", "9"])
        .args(["--duration", "4s", "--keys", "200", "--json", "-"])
        .env("TIDAL_LOG", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tidal bench --verify --readonly: {stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let v = &report["verify"];
    assert_eq!((v["lost"].as_u64(), v["stale"].as_u64()), (Some(0), Some(0)), "{v}");
    let h = &v["history"];
    assert!(h["ops"].as_u64().unwrap_or(0) > 1000, "{h}");
    assert_eq!((h["violations"].as_u64(), h["unknown"].as_u64()), (Some(0), Some(0)), "{h}");
    assert!(h["skipped"].is_null(), "{h}");
    let served: u64 = (0..3).map(|i| follower_reads(&c, i)).sum();
    assert!(served > 1000, "followers served {served} reads of the verified load");
}

#[test]
fn a_readonly_read_across_prgs_reads_each_part_from_the_connected_replica() {
    let c = Cluster::start(3, &["--prgs", "4", "--slots", "64"]);
    let prgs: Vec<String> = (0..4).map(|i| format!("default:{i}")).collect();
    let leaders: Vec<u64> = prgs
        .iter()
        .map(|p| wait_for(Duration::from_secs(30), "a leader of every PRG", || c.group_on(0, p)?["leader"].as_u64()))
        .collect();
    // The node leading the fewest PRGs follows at least one of them.
    let fi = (0..3).min_by_key(|&i| leaders.iter().filter(|&&l| l == c.nodes[i].id).count()).unwrap();
    let mut writer = c.client((fi + 1) % 3);
    let keys: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
    for k in &keys {
        assert_eq!(writer.cmd(&["SET", k, &format!("v-{k}")]).unwrap(), Value::Simple("OK".into()));
    }
    let mut ro = c.client(fi);
    assert_eq!(ro.cmd(&["READONLY"]).unwrap(), Value::Simple("OK".into()));
    let before = follower_reads(&c, fi);
    let mut args = vec!["MGET"];
    args.extend(keys.iter().map(String::as_str));
    args.push("absent");
    let want: Vec<Value> = keys.iter().map(|k| Value::bulk(&format!("v-{k}"))).chain([Value::Nil]).collect();
    assert_eq!(ro.cmd(&args).unwrap(), Value::Array(want));
    args[0] = "EXISTS";
    assert_eq!(ro.cmd(&args).unwrap(), Value::Int(40));
    // Each of MGET's and EXISTS's parts of a PRG this node follows was
    // read here, not at the PRG's leader.
    let served = follower_reads(&c, fi) - before;
    assert!(served >= 2, "node {} served {served} parts of a cross-PRG MGET and EXISTS", c.nodes[fi].id);
}
