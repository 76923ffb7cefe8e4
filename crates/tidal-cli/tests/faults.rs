//! Faults against real node processes: SIGKILL one node under write load,
//! SIGKILL every node, and a replica that must catch up through a snapshot.
//! Every acknowledged write must be readable afterwards.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{wait_for, Client, Cluster, Value};

/// Acknowledged writes: key -> value, plus the time of every success.
#[derive(Default)]
struct History {
    acked: BTreeMap<String, String>,
    successes: Vec<Instant>,
}

/// A client that writes unique keys until `stop`, moving to the next
/// endpoint when its connection fails (as an application would).
fn writer(endpoints: Vec<String>, id: usize, stop: Arc<AtomicBool>, history: Arc<Mutex<History>>) {
    let mut ep = id % endpoints.len();
    let mut client: Option<Client> = None;
    let mut n = 0u64;
    let deadline = Instant::now() + Duration::from_secs(120);
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        if client.is_none() {
            client = Client::connect(&endpoints[ep]).ok();
            if client.is_none() {
                ep = (ep + 1) % endpoints.len();
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
        }
        let key = format!("w{id}:{n}");
        let value = format!("v{id}:{n}");
        match client.as_mut().unwrap().cmd(&["SET", &key, &value]) {
            Ok(Value::Simple(s)) if s == "OK" => {
                let mut h = history.lock().unwrap();
                h.acked.insert(key, value);
                h.successes.push(Instant::now());
                n += 1;
            }
            Ok(_) => {
                // An error reply (e.g. TRYAGAIN): not acknowledged; retry the same key.
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(_) => {
                client = None;
                ep = (ep + 1) % endpoints.len();
            }
        }
    }
}

/// SET `n` keys `{prefix}{i}`, asserting each is acknowledged.
fn write_keys(client: &mut Client, prefix: &str, n: usize) -> BTreeMap<String, String> {
    let mut acked = BTreeMap::new();
    for i in 0..n {
        let (k, v) = (format!("{prefix}{i}"), format!("value{i}"));
        assert_eq!(client.cmd(&["SET", &k, &v]).unwrap(), Value::Simple("OK".into()));
        acked.insert(k, v);
    }
    acked
}

fn verify_all(c: &Cluster, node: usize, acked: &BTreeMap<String, String>) {
    let mut client = c.client(node);
    let mut missing = Vec::new();
    for (k, v) in acked {
        match client.cmd(&["GET", k]).unwrap() {
            Value::Bulk(b) if b == v.as_bytes() => {}
            other => missing.push(format!("{k}: expected {v}, got {other:?}")),
        }
    }
    assert!(
        missing.is_empty(),
        "{} acknowledged writes lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
}

/// Every group on node `i` has applied what its leader has committed.
/// Only leaders report a commit index, so ask every running node.
fn caught_up(c: &Cluster, i: usize) -> bool {
    let Some(mine) = c.groups(i) else { return false };
    let mut commit: BTreeMap<String, u64> = BTreeMap::new();
    for n in (0..c.nodes.len()).filter(|&n| c.nodes[n].child.is_some()) {
        for g in c.groups(n).and_then(|g| g.as_array().cloned()).unwrap_or_default() {
            if let (Some(id), Some(ci)) = (g["id"].as_str(), g["commitIndex"].as_u64()) {
                commit.insert(id.to_string(), ci);
            }
        }
    }
    let mine = mine.as_array().unwrap();
    !mine.is_empty()
        && mine.iter().all(|g| {
            let ci = g["id"].as_str().and_then(|id| commit.get(id));
            matches!(ci, Some(ci) if g["appliedIndex"].as_u64().unwrap_or(0) >= *ci)
        })
}

#[test]
fn sigkill_one_node_while_clients_write() {
    let mut c = Cluster::start(3, &[]);
    let endpoints: Vec<String> = c.nodes.iter().map(|n| n.redis.clone()).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let history = Arc::new(Mutex::new(History::default()));
    let writers: Vec<_> = (0..6)
        .map(|id| {
            let (e, s, h) = (endpoints.clone(), stop.clone(), history.clone());
            std::thread::spawn(move || writer(e, id, s, h))
        })
        .collect();
    wait_for(Duration::from_secs(30), "writes before the kill", || {
        (history.lock().unwrap().acked.len() >= 300).then_some(())
    });

    // Kill the node that leads the most groups, so leaders must move.
    let victim = (0..3)
        .max_by_key(|&i| {
            c.groups(i).map_or(0, |g| g.as_array().unwrap().iter().filter(|g| g["leader"] == c.nodes[i].id).count())
        })
        .unwrap();
    let killed_at = Instant::now();
    c.kill(victim);
    let before = history.lock().unwrap().acked.len();
    wait_for(Duration::from_secs(30), "writes after the kill", || {
        (history.lock().unwrap().acked.len() >= before + 300).then_some(())
    });
    // Clients saw a pause of at most a few election timeouts, not an outage.
    let first_after = history.lock().unwrap().successes.iter().copied().find(|t| *t > killed_at).unwrap();
    let pause = first_after - killed_at;
    assert!(pause < Duration::from_secs(5), "writes paused for {pause:?} after the kill");

    c.spawn(victim);
    c.wait_ready(victim, Duration::from_secs(60));
    wait_for(Duration::from_secs(60), "the restarted node to catch up", || caught_up(&c, victim).then_some(()));
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let acked = history.lock().unwrap().acked.clone();
    assert!(acked.len() >= 600);
    verify_all(&c, victim, &acked);
}

#[test]
fn sigkill_every_node_and_restart() {
    let mut c = Cluster::start(3, &[]);
    let mut client = c.client(0);
    let acked = write_keys(&mut client, "key", 500);
    assert_eq!(client.cmd(&["INCRBY", "counter", "7"]).unwrap(), Value::Int(7));
    for i in 0..3 {
        c.kill(i);
    }
    for i in 0..3 {
        c.spawn(i);
    }
    c.wait_all_ready(Duration::from_secs(60));
    verify_all(&c, 2, &acked);
    assert_eq!(c.client(1).cmd(&["GET", "counter"]).unwrap(), Value::bulk("7"));
}

#[test]
fn a_lagging_replica_catches_up_through_a_snapshot() {
    // A peer that is down holds the leader's log for a second only.
    let mut c = Cluster::start(3, &["--snapshot-every", "50", "--keep-after-snapshot", "5", "--log-hold-ms", "1000"]);
    c.kill(2);
    let mut acked = write_keys(&mut c.client(0), "s", 800);
    // About 12 MiB in large values: each PRG's snapshot is several times
    // the 1 MiB piece the transport sends it in.
    let mut client = c.client(0);
    for i in 0..40 {
        let (k, v) = (format!("big{i}"), format!("{i:04}").repeat(75_000));
        assert_eq!(client.cmd(&["SET", &k, &v]).unwrap(), Value::Simple("OK".into()));
        acked.insert(k, v);
    }
    // The survivors snapshotted and purged the log past what node 3 has.
    wait_for(Duration::from_secs(30), "a snapshot on node 1", || {
        let g = c.groups(0)?;
        g.as_array()?.iter().all(|g| g["id"] == "_cp" || g["snapshotIndex"].as_u64().unwrap_or(0) > 50).then_some(())
    });
    c.spawn(2);
    c.wait_ready(2, Duration::from_secs(60));
    wait_for(Duration::from_secs(60), "node 3 to catch up", || caught_up(&c, 2).then_some(()));
    let installed = c.groups(2).unwrap();
    assert!(
        installed.as_array().unwrap().iter().any(|g| g["snapshotIndex"].as_u64().unwrap_or(0) > 0),
        "node 3 should have installed snapshots: {installed}"
    );
    // With node 1 down, every quorum needs node 3's copy.
    c.kill(0);
    wait_for(Duration::from_secs(30), "node 2 ready without node 1", || c.ready(1).then_some(()));
    verify_all(&c, 1, &acked);
}

/// A follower that was down while large entries piled up catches up from
/// the log: 80 values of 1 MiB, each its own entry, are more than one frame
/// of the peer transport may carry, so the leader's appends to it are cut
/// to fit. No node snapshots 80 MiB of log (the default is every 64 MiB):
/// the follower could build its own snapshot once it has caught up.
#[test]
fn a_follower_catches_up_on_large_entries_through_the_log() {
    let mut c = Cluster::start(3, &["--prgs", "1", "--slots", "16", "--snapshot-every-mb", "1024"]);
    c.kill(2);
    let mut client = c.client(0);
    let mut acked = BTreeMap::new();
    for i in 0..80 {
        let (k, v) = (format!("huge{i}"), format!("{i:04}").repeat(256 * 1024));
        assert_eq!(client.cmd(&["SET", &k, &v]).unwrap(), Value::Simple("OK".into()));
        acked.insert(k, v);
    }
    c.spawn(2);
    c.wait_ready(2, Duration::from_secs(60));
    wait_for(Duration::from_secs(60), "node 3 to catch up from the log", || caught_up(&c, 2).then_some(()));
    let node3 = c.groups(2).unwrap();
    assert!(
        node3.as_array().unwrap().iter().all(|g| g["snapshotIndex"].as_u64().unwrap_or(0) == 0),
        "node 3 should have caught up by the log alone: {node3}"
    );
    // With node 1 down, every quorum needs node 3's copy.
    c.kill(0);
    wait_for(Duration::from_secs(30), "node 2 ready without node 1", || c.ready(1).then_some(()));
    verify_all(&c, 1, &acked);
}
