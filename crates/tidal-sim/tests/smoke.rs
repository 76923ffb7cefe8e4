//! Three whole nodes under turmoil: the cluster bootstraps on the
//! simulated network, serves Redis clients, keeps serving when one node is
//! cut off, and a node that crashes (losing what it had not synced) and
//! restarts serves every acknowledged write.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use tidal_sim::campaign::{Boot, Machine};
use tidal_sim::invariants::Invariants;
use tidal_sim::SimDisk;

async fn cmd(addr: &str, args: &[&str]) -> std::io::Result<String> {
    tidal_sim::resp::call(addr, args, Duration::from_secs(5)).await
}

/// Retries `args` on `addr` until it answers without an error, for at
/// most `limit` of simulated time.
async fn until_ok(addr: &str, args: &[&str], limit: Duration) -> String {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match cmd(addr, args).await {
            Ok(r) if !r.starts_with('-') => return r,
            other => {
                assert!(tokio::time::Instant::now() < deadline, "{args:?} on {addr} kept failing: {other:?}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

fn sim(seed: u64) -> turmoil::Sim<'static> {
    turmoil::Builder::new()
        .simulation_duration(Duration::from_secs(300))
        .tick_duration(Duration::from_millis(1))
        .epoch(UNIX_EPOCH + Duration::from_secs(1_800_000_000))
        .min_message_latency(Duration::from_micros(200))
        .max_message_latency(Duration::from_millis(2))
        .rng_seed(seed)
        .build()
}

/// Steps of the test the client and the driver hand to each other.
const WRITTEN: u32 = 1;
const CRASHED: u32 = 2;
const WRITTEN_WITHOUT_IT: u32 = 3;
const RESTARTED: u32 = 4;

async fn wait_phase(phase: &AtomicU32, want: u32) {
    while phase.load(Ordering::SeqCst) < want {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[test]
fn a_simulated_cluster_serves_clients_through_a_crash_and_a_partition() {
    let seed = std::env::var("TIDAL_SIM_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(7);
    eprintln!(
        "seed {seed} (TIDAL_SIM_SEED={seed} cargo test -p tidal-sim --test smoke draws the same network randomness)"
    );
    let mut sim = sim(seed);
    let ips: Vec<IpAddr> = (1..=3).map(|i| sim.lookup(format!("node{i}"))).collect();
    let disks: Vec<SimDisk> = (0..3).map(|_| SimDisk::default()).collect();
    let invariants: Arc<Mutex<Invariants>> = Arc::default();
    for id in 1..=3u64 {
        let boot = Boot::Peers(ips.clone());
        let machine =
            Machine { disk: disks[id as usize - 1].clone(), invariants: invariants.clone(), ..Machine::default() };
        tidal_sim::campaign::host(&mut sim, id, ips[id as usize - 1], boot, machine);
    }
    let addr = |i: usize| format!("{}:6379", ips[i]);
    let (a0, a1, a2) = (addr(0), addr(1), addr(2));
    let phase = Arc::new(AtomicU32::new(0));
    let p = phase.clone();
    sim.client("client", async move {
        // The cluster bootstraps; every write through node 1 is read back
        // through node 3.
        for k in 0..20 {
            let key = format!("k{k}");
            assert_eq!(until_ok(&a0, &["SET", &key, &format!("v{k}")], Duration::from_secs(60)).await, "+OK");
        }
        for k in 0..20 {
            let got = until_ok(&a2, &["GET", &format!("k{k}")], Duration::from_secs(30)).await;
            assert_eq!(got, format!("v{k}"));
        }
        // Node 3 crashes, losing what it had not synced; the other two go on.
        p.store(WRITTEN, Ordering::SeqCst);
        wait_phase(&p, CRASHED).await;
        for k in 20..30 {
            let key = format!("k{k}");
            assert_eq!(until_ok(&a0, &["SET", &key, &format!("v{k}")], Duration::from_secs(60)).await, "+OK");
        }
        p.store(WRITTEN_WITHOUT_IT, Ordering::SeqCst);
        wait_phase(&p, RESTARTED).await;
        // Back, node 3 serves every acknowledged write, old and missed.
        for k in 0..30 {
            let got = until_ok(&a2, &["GET", &format!("k{k}")], Duration::from_secs(60)).await;
            assert_eq!(got, format!("v{k}"), "k{k} through node 3 after its restart");
        }
        // Node 1 is cut off: the other two elect leaders where needed and
        // keep serving.
        turmoil::partition("node1", "node2");
        turmoil::partition("node1", "node3");
        for k in 30..40 {
            let key = format!("k{k}");
            assert_eq!(until_ok(&a1, &["SET", &key, &format!("v{k}")], Duration::from_secs(60)).await, "+OK");
        }
        turmoil::repair("node1", "node2");
        turmoil::repair("node1", "node3");
        // Once healed, node 1 serves every write, including those it missed.
        for k in 0..40 {
            let got = until_ok(&a0, &["GET", &format!("k{k}")], Duration::from_secs(60)).await;
            assert_eq!(got, format!("v{k}"), "k{k} through node 1 after the partition healed");
        }
        Ok(())
    });

    let mut crashed_at = None;
    while !sim.step().unwrap() {
        invariants.lock().unwrap().sample_due(sim.elapsed());
        match phase.load(Ordering::SeqCst) {
            WRITTEN => {
                // Fence the disk first: the dying node must not sync on its way out.
                disks[2].crash();
                sim.crash("node3");
                crashed_at = Some(sim.elapsed());
                phase.store(CRASHED, Ordering::SeqCst);
            }
            WRITTEN_WITHOUT_IT if crashed_at.is_some_and(|t| sim.elapsed() > t + Duration::from_secs(2)) => {
                sim.bounce("node3");
                phase.store(RESTARTED, Ordering::SeqCst);
            }
            _ => {}
        }
    }
    let inv = invariants.lock().unwrap();
    assert!(inv.checks > 300, "the nodes were sampled ({} samples)", inv.checks);
    assert!(inv.violations.is_empty(), "{:#?}", inv.violations);
}
