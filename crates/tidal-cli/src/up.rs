//! `tidal up`: a local cluster of `tidal node` child processes on 127.0.0.1.
//!
//! Ports for node i (0-based), from `--base-port B`:
//! Redis `B+i`, HTTP `B+100+i`, peer `B+200+i`. Node ids are 1..=N; the
//! first three host the control plane. The layout is saved in the data
//! directory, so running `tidal up` again brings back the same cluster.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

#[derive(clap::Args)]
pub struct UpArgs {
    /// Number of nodes (at least 3).
    #[arg(long, default_value_t = 3)]
    nodes: u32,
    /// PRGs of the default tenant.
    #[arg(long, default_value_t = 4)]
    prgs: u32,
    /// Slots of the default tenant.
    #[arg(long, default_value_t = 1024)]
    slots: u32,
    /// First Redis port; HTTP ports start at +100, peer ports at +200.
    #[arg(long, default_value_t = 6380)]
    base_port: u16,
    /// Where every node keeps its data (one subdirectory per node).
    #[arg(long, default_value = "./tidal-data")]
    data_dir: PathBuf,
    /// Seconds to wait for every node to become ready.
    #[arg(long, default_value_t = 60)]
    ready_timeout: u64,
}

/// What `tidal up` records in the data directory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Layout {
    nodes: u32,
    prgs: u32,
    slots: u32,
    base_port: u16,
}

impl Layout {
    fn redis(&self, i: u32) -> String {
        format!("127.0.0.1:{}", u32::from(self.base_port) + i)
    }
    fn http(&self, i: u32) -> String {
        format!("127.0.0.1:{}", u32::from(self.base_port) + 100 + i)
    }
    fn peer(&self, i: u32) -> String {
        format!("127.0.0.1:{}", u32::from(self.base_port) + 200 + i)
    }
    fn peers(&self) -> String {
        (0..self.nodes).map(|i| format!("{}={}", i + 1, self.peer(i))).collect::<Vec<_>>().join(",")
    }
}

fn validate(a: &UpArgs) -> Result<Layout, Vec<String>> {
    let mut errs = Vec::new();
    if a.nodes < 3 {
        errs.push(format!("--nodes: at least 3 (every PRG has 3 replicas), got {}", a.nodes));
    }
    if a.nodes > 50 {
        errs.push(format!("--nodes: at most 50 on one machine, got {}", a.nodes));
    }
    if a.slots == 0 || a.slots > 16_384 {
        errs.push(format!("--slots: must be in 1..=16384, got {}", a.slots));
    }
    if a.prgs == 0 || a.prgs > a.slots {
        errs.push(format!("--prgs: must be in 1..=slots ({}), got {}", a.slots, a.prgs));
    }
    if a.base_port < 1024 || u32::from(a.base_port) + 200 + a.nodes > 65_535 {
        errs.push(format!(
            "--base-port: {} leaves no room for {} nodes' ports (needs base..base+{})",
            a.base_port,
            a.nodes,
            200 + a.nodes
        ));
    }
    if a.ready_timeout == 0 {
        errs.push("--ready-timeout: must be greater than 0".to_string());
    }
    if errs.is_empty() {
        Ok(Layout { nodes: a.nodes, prgs: a.prgs, slots: a.slots, base_port: a.base_port })
    } else {
        Err(errs)
    }
}

fn load_or_save_layout(dir: &Path, wanted: Layout) -> Result<Layout, String> {
    let path = dir.join("up.json");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let saved: Layout = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        if saved != wanted {
            eprintln!(
                "note: {} holds a cluster of {} nodes, {} PRGs, {} slots on base port {}; starting that cluster (scaling is a separate operation)",
                dir.display(), saved.nodes, saved.prgs, saved.slots, saved.base_port
            );
        }
        return Ok(saved);
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let text = serde_json::to_string_pretty(&wanted).expect("layout serializes");
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(wanted)
}

fn spawn_node(exe: &Path, layout: &Layout, i: u32, dir: &Path) -> std::io::Result<Child> {
    let node_dir = dir.join(format!("node-{}", i + 1));
    std::fs::create_dir_all(&node_dir)?;
    let log = std::fs::OpenOptions::new().create(true).append(true).open(node_dir.join("node.log"))?;
    let mut cmd = Command::new(exe);
    cmd.arg("node")
        .args(["--node-id", &(i + 1).to_string()])
        .args(["--listen", &layout.peer(i)])
        .args(["--client-addr", &layout.redis(i)])
        .args(["--http-addr", &layout.http(i)])
        .arg("--data-dir")
        .arg(&node_dir)
        .args(["--peers", &layout.peers()])
        .args(["--slots", &layout.slots.to_string()])
        .args(["--prgs", &layout.prgs.to_string()]);
    // The nodes share this machine's cores: each gets its share of worker
    // threads unless TIDAL_WORKER_THREADS says otherwise.
    if std::env::var_os("TIDAL_WORKER_THREADS").is_none() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        cmd.args(["--worker-threads", &(cores / layout.nodes).max(1).to_string()]);
    }
    cmd.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log).spawn()
}

fn is_ready(http: &str) -> bool {
    ureq::get(&format!("http://{http}/readyz")).call().is_ok()
}

pub fn run(args: UpArgs) -> i32 {
    let wanted = match validate(&args) {
        Ok(l) => l,
        Err(errs) => {
            for e in errs {
                eprintln!("error: {e}");
            }
            return crate::EXIT_USAGE;
        }
    };
    let layout = match load_or_save_layout(&args.data_dir, wanted) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: cannot find the tidal binary: {e}");
            return 1;
        }
    };
    let mut children: Vec<(u32, Child)> = Vec::new();
    for i in 0..layout.nodes {
        match spawn_node(&exe, &layout, i, &args.data_dir) {
            Ok(c) => children.push((i + 1, c)),
            Err(e) => {
                eprintln!("error: cannot start node {}: {e}", i + 1);
                stop_all(&mut children);
                return 1;
            }
        }
    }
    eprintln!("starting {} nodes (logs in {}/node-N/node.log)...", layout.nodes, args.data_dir.display());
    let deadline = Instant::now() + Duration::from_secs(args.ready_timeout);
    let mut ready = vec![false; layout.nodes as usize];
    while !ready.iter().all(|r| *r) {
        if let Some((id, status)) = exited(&mut children) {
            eprintln!("error: node {id} exited during start-up ({status}); see its node.log");
            stop_all(&mut children);
            return 1;
        }
        if Instant::now() > deadline {
            let waiting: Vec<String> =
                ready.iter().enumerate().filter(|(_, r)| !**r).map(|(i, _)| (i + 1).to_string()).collect();
            eprintln!(
                "warning: nodes {} not ready after {}s; they keep trying (see `tidal status --http {}`)",
                waiting.join(","),
                args.ready_timeout,
                layout.http(0)
            );
            break;
        }
        for i in 0..layout.nodes {
            if !ready[i as usize] {
                ready[i as usize] = is_ready(&layout.http(i));
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    println!(
        "tidal cluster up: {} nodes, tenant default with {} slots and {} PRGs",
        layout.nodes, layout.slots, layout.prgs
    );
    for i in 0..layout.nodes {
        println!("  node {}  redis {}  http {}  peer {}", i + 1, layout.redis(i), layout.http(i), layout.peer(i));
    }
    let port = u32::from(layout.base_port);
    println!(
        "try: redis-cli -p {port} set hello world   |   tidal status --http {}   |   Ctrl-C stops the cluster",
        layout.http(0)
    );

    let code = crate::runtime().block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("cannot install SIGTERM handler");
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return 0,
                _ = term.recv() => return 0,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {
                    if let Some((id, status)) = exited(&mut children) {
                        eprintln!("warning: node {id} exited ({status}); the others keep serving");
                    }
                }
            }
        }
    });
    eprintln!("stopping {} nodes...", children.len());
    stop_all(&mut children);
    eprintln!("stopped; data kept in {}", args.data_dir.display());
    code
}

/// The first child that has exited (removed from the list), if any.
fn exited(children: &mut Vec<(u32, Child)>) -> Option<(u32, std::process::ExitStatus)> {
    let pos = children.iter_mut().position(|(_, c)| matches!(c.try_wait(), Ok(Some(_))))?;
    let (id, mut c) = children.remove(pos);
    let status = c.wait().ok()?;
    Some((id, status))
}

/// SIGTERM every child (they stop gracefully), then SIGKILL stragglers.
fn stop_all(children: &mut Vec<(u32, Child)>) {
    for (_, c) in children.iter() {
        let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline && children.iter_mut().any(|(_, c)| matches!(c.try_wait(), Ok(None))) {
        std::thread::sleep(Duration::from_millis(100));
    }
    for (id, c) in children.iter_mut() {
        if matches!(c.try_wait(), Ok(None)) {
            eprintln!("node {id} did not stop in time; killing it");
            let _ = c.kill();
            let _ = c.wait();
        }
    }
    children.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> UpArgs {
        UpArgs { nodes: 3, prgs: 4, slots: 1024, base_port: 6380, data_dir: "x".into(), ready_timeout: 60 }
    }

    #[test]
    fn ports_follow_the_base_port() {
        let l = validate(&args()).unwrap();
        assert_eq!(l.redis(0), "127.0.0.1:6380");
        assert_eq!(l.http(2), "127.0.0.1:6482");
        assert_eq!(l.peer(1), "127.0.0.1:6581");
        assert_eq!(l.peers(), "1=127.0.0.1:6580,2=127.0.0.1:6581,3=127.0.0.1:6582");
    }

    #[test]
    fn bad_flags_are_all_reported() {
        let a = UpArgs { nodes: 2, prgs: 0, slots: 0, base_port: 80, ..args() };
        let errs = validate(&a).unwrap_err();
        assert_eq!(errs.len(), 4, "{errs:?}");
    }
}
