//! Three whole nodes under turmoil: the cluster bootstraps on the
//! simulated network, serves Redis clients, keeps serving when one node is
//! cut off, and a node that crashes (losing what it had not synced) and
//! restarts serves every acknowledged write.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use tidal_node::{Network, Node, RawConfig};
use tidal_sim::{SimAcceptor, SimClock, SimConnector, SimDisk};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A minimal RESP client: one command, one simple reply.
async fn cmd(addr: &str, args: &[&str]) -> std::io::Result<String> {
    let mut s = turmoil::net::TcpStream::connect(addr).await?;
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).into_owned();
        // +OK / -ERR / $-1 / $n\r\nvalue\r\n
        if let Some(rest) = text.strip_prefix('$') {
            if rest.starts_with("-1\r\n") {
                return Ok("(nil)".into());
            }
            if let Some((len, body)) = rest.split_once("\r\n") {
                let len: usize = len.parse().unwrap_or(0);
                if body.len() >= len + 2 {
                    return Ok(body[..len].to_string());
                }
            }
        } else if text.ends_with("\r\n") {
            return Ok(text.trim_end().to_string());
        }
    }
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

/// Registers node `id` (1-based) as a restartable host on `disk`.
fn node(sim: &mut turmoil::Sim<'static>, id: u64, ips: &[IpAddr], disk: SimDisk) {
    let peers: Vec<String> = ips.iter().enumerate().map(|(i, ip)| format!("{}={ip}:7000", i + 1)).collect();
    let peers = peers.join(",");
    let ip = ips[id as usize - 1];
    sim.host(format!("node{id}"), move || {
        let (disk, peers) = (disk.clone(), peers.clone());
        async move {
            let raw = RawConfig {
                node_id: Some(id),
                listen: Some("0.0.0.0:7000".into()),
                advertise: Some(format!("{ip}:7000")),
                client_addr: Some(format!("{ip}:6379")),
                http_addr: Some(format!("{ip}:8080")),
                data_dir: Some(format!("/sim/node{id}").into()),
                peers: Some(peers),
                slots: Some(64),
                prgs: Some(2),
                ..Default::default()
            };
            let config = raw.resolve()?;
            let net = Network {
                peer: Arc::new(SimAcceptor::bind(7000, format!("{ip}:7000")).await?),
                client: Arc::new(SimAcceptor::bind(6379, format!("{ip}:6379")).await?),
                http: Arc::new(SimAcceptor::bind(8080, format!("{ip}:8080")).await?),
                connector: Arc::new(SimConnector),
            };
            let node = Node::start(config, net, Arc::new(disk), Arc::new(SimClock::default())).await?;
            let why = node.failed().await;
            Err(why.into())
        }
    });
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
    for id in 1..=3u64 {
        node(&mut sim, id, &ips, disks[id as usize - 1].clone());
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
}
