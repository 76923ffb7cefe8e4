//! `tidal up`: a local cluster of `tidal node` child processes on 127.0.0.1.
//!
//! Ports for node i (0-based), from `--base-port B`:
//! Redis `B+i`, HTTP `B+100+i`, peer `B+200+i`. Node ids are 1..=N; the
//! first three host the control plane. The layout is saved in the data
//! directory, so running `tidal up` again brings back the same cluster.
//!
//! `tidal up` is also the local provider of scaling operations: while it
//! runs, it watches for an operation waiting on new nodes (`tidal scale
//! --nodes N`), starts them on the next ports of its layout with `--join`,
//! and records them in the layout, so a later `tidal up` brings them back
//! too.

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
    /// Run the nodes without TLS or certificates (`tidal node --insecure`).
    #[arg(long)]
    insecure: bool,
}

/// What `tidal up` records in the data directory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Layout {
    nodes: u32,
    prgs: u32,
    slots: u32,
    base_port: u16,
    /// Nodes started together with `--peers` (the rest joined later);
    /// absent: all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    initial: Option<u32>,
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
    fn initial(&self) -> u32 {
        self.initial.unwrap_or(self.nodes)
    }
    fn peers(&self) -> String {
        (0..self.initial()).map(|i| format!("{}={}", i + 1, self.peer(i))).collect::<Vec<_>>().join(",")
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
        Ok(Layout { nodes: a.nodes, prgs: a.prgs, slots: a.slots, base_port: a.base_port, initial: None })
    } else {
        Err(errs)
    }
}

fn save_layout(dir: &Path, layout: &Layout) -> Result<(), String> {
    let path = dir.join("up.json");
    let text = serde_json::to_string_pretty(layout).expect("layout serializes");
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn load_or_save_layout(dir: &Path, wanted: Layout) -> Result<Layout, String> {
    let path = dir.join("up.json");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let saved: Layout = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        if (saved.nodes, saved.prgs, saved.slots, saved.base_port)
            != (wanted.nodes, wanted.prgs, wanted.slots, wanted.base_port)
        {
            eprintln!(
                "note: {} holds a cluster of {} nodes, {} PRGs, {} slots on base port {}; starting that cluster (scaling is a separate operation)",
                dir.display(), saved.nodes, saved.prgs, saved.slots, saved.base_port
            );
        }
        return Ok(saved);
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    save_layout(dir, &wanted)?;
    Ok(wanted)
}

/// Where `tidal up` keeps the cluster's certificates: the CA, the
/// operator's client certificate, and a directory per node.
fn certs_dir(dir: &Path) -> PathBuf {
    dir.join("certs")
}

/// Make whatever certificates are missing: the CA and the operator's
/// `root` client certificate on a first run, and node `id`'s.
fn ensure_certs(dir: &Path, id: u32) -> Result<PathBuf, String> {
    let certs = certs_dir(dir);
    if !certs.join(tidal_node::tls::CA_CERT).exists() {
        crate::certs::init(&certs, "tidal", 3650, false)?;
        crate::certs::client(&certs, "root", 3650, false)?;
    }
    let node = crate::certs::node_dir(&certs, u64::from(id));
    if !node.join(tidal_node::tls::NODE_CERT).exists() {
        crate::certs::node(&certs, u64::from(id), &node, &[], 3650, true)?;
    }
    Ok(node)
}

fn spawn_node(exe: &Path, layout: &Layout, i: u32, dir: &Path, insecure: bool) -> std::io::Result<Child> {
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
        .arg(&node_dir);
    if insecure {
        cmd.arg("--insecure");
    } else {
        let certs = ensure_certs(dir, i + 1).map_err(std::io::Error::other)?;
        cmd.arg("--certs-dir").arg(certs);
    }
    if i < layout.initial() {
        cmd.args(["--peers", &layout.peers()])
            .args(["--slots", &layout.slots.to_string()])
            .args(["--prgs", &layout.prgs.to_string()]);
    } else {
        cmd.args(["--join", &layout.peer(0)]);
    }
    // The nodes share this machine's cores: each gets its share of worker
    // threads unless TIDAL_WORKER_THREADS says otherwise.
    if std::env::var_os("TIDAL_WORKER_THREADS").is_none() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        cmd.args(["--worker-threads", &(cores / layout.nodes).max(1).to_string()]);
    }
    cmd.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log).spawn()
}

fn is_ready(http: &str) -> bool {
    let agent = crate::http_client::agent(Duration::from_secs(2));
    agent.get(&crate::http_client::url(http, "/readyz")).call().is_ok_and(|r| r.status() == 200)
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
    let mut layout = match load_or_save_layout(&args.data_dir, wanted) {
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
    // The CLI reaches the nodes as the operator will: over HTTPS with the
    // `root` client certificate, unless --insecure.
    let certs = (!args.insecure).then(|| certs_dir(&args.data_dir));
    if let Some(c) = &certs {
        if let Err(e) = ensure_certs(&args.data_dir, 1) {
            eprintln!("error: cannot make certificates in {}: {e}", c.display());
            return 1;
        }
    }
    let opts = crate::http_client::ClientOpts { client_name: "root".into(), ..Default::default() };
    if let Err(e) = crate::http_client::configure_dir(certs.clone(), &opts) {
        eprintln!("error: {e}");
        return 1;
    }
    let mut children: Vec<(u32, Child)> = Vec::new();
    for i in 0..layout.nodes {
        match spawn_node(&exe, &layout, i, &args.data_dir, args.insecure) {
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
    match &certs {
        Some(c) => println!(
            "  mTLS between nodes and on the admin API; certificates in {} (CA ca.crt, operator client.root.crt){}",
            c.display(),
            if c == Path::new(crate::http_client::DEFAULT_CERTS) {
                String::new()
            } else {
                format!("; point the CLI at them with --client-certs {}", c.display())
            }
        ),
        None => println!("  WARNING: --insecure: no TLS, peers unauthenticated, admin API open to anyone"),
    }
    let port = u32::from(layout.base_port);
    println!(
        "try: redis-cli -p {port} set hello world   |   tidal status --http {}   |   Ctrl-C stops the cluster",
        layout.http(0)
    );

    let code = crate::runtime().block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        // Both listeners live across the loop: a signal that arrives while
        // no listener exists (during `provide`, which blocks) would be lost.
        let mut int = signal(SignalKind::interrupt()).expect("cannot install SIGINT handler");
        let mut term = signal(SignalKind::terminate()).expect("cannot install SIGTERM handler");
        loop {
            tokio::select! {
                _ = int.recv() => return 0,
                _ = term.recv() => return 0,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {
                    if let Some((id, status)) = exited(&mut children) {
                        eprintln!("warning: node {id} exited ({status}); the others keep serving");
                    }
                    provide(&exe, &mut layout, &args.data_dir, args.insecure, &mut children);
                }
            }
        }
    });
    eprintln!("stopping {} nodes...", children.len());
    stop_all(&mut children);
    eprintln!("stopped; data kept in {}", args.data_dir.display());
    code
}

/// The node ids a running scaling operation waits for, as any reachable
/// node of `layout` says.
fn wanted_nodes(layout: &Layout) -> Option<Vec<u32>> {
    let agent = crate::http_client::agent(Duration::from_secs(1));
    (0..layout.nodes).find_map(|i| {
        let mut resp = agent.get(&crate::http_client::url(&layout.http(i), "/api/v1/operations")).call().ok()?;
        if resp.status() != 200 {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&resp.body_mut().read_to_string().ok()?).ok()?;
        let ops = v["operations"].as_array()?;
        let running = ops.iter().find(|o| o["status"] == "running" && o["phase"] == "add-nodes");
        Some(running.map_or_else(Vec::new, |o| {
            let ids = o["addNodes"].as_array().map_or(&[][..], Vec::as_slice);
            ids.iter().filter_map(|id| id.as_u64().and_then(|id| u32::try_from(id).ok())).collect()
        }))
    })
}

/// As the local provider: start the nodes a scaling operation waits for
/// on the next ports of the layout, and record them in it.
fn provide(exe: &Path, layout: &mut Layout, dir: &Path, insecure: bool, children: &mut Vec<(u32, Child)>) {
    let Some(ids) = wanted_nodes(layout) else { return };
    let new: Vec<u32> = ids.into_iter().filter(|id| *id > layout.nodes).collect();
    let Some(&top) = new.iter().max() else { return };
    if new.len() as u32 != top - layout.nodes || u32::from(layout.base_port) + 200 + top > 65_535 || top > 50 {
        eprintln!("warning: the operation wants nodes {new:?}, which this layout cannot start; start them by hand");
        return;
    }
    let mut grown = layout.clone();
    grown.initial = Some(layout.initial());
    grown.nodes = top;
    if let Err(e) = save_layout(dir, &grown) {
        eprintln!("error: {e}; not starting nodes {new:?}");
        return;
    }
    *layout = grown;
    for id in new {
        match spawn_node(exe, layout, id - 1, dir, insecure) {
            Ok(c) => {
                eprintln!("started node {id} for a scaling operation (http {})", layout.http(id - 1));
                children.push((id, c));
            }
            Err(e) => eprintln!("error: cannot start node {id}: {e}"),
        }
    }
}

/// The first child that has exited (removed from the list), if any.
fn exited(children: &mut Vec<(u32, Child)>) -> Option<(u32, std::process::ExitStatus)> {
    let pos = children.iter_mut().position(|(_, c)| matches!(c.try_wait(), Ok(Some(_))))?;
    let (id, mut c) = children.remove(pos);
    let status = c.wait().ok()?;
    Some((id, status))
}

/// SIGINT every child (they stop gracefully, keeping their replicas: the
/// whole cluster stops, so nothing drains), then SIGKILL stragglers.
fn stop_all(children: &mut Vec<(u32, Child)>) {
    for (_, c) in children.iter() {
        let _ = Command::new("kill").args(["-INT", &c.id().to_string()]).status();
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
        UpArgs {
            nodes: 3,
            prgs: 4,
            slots: 1024,
            base_port: 6380,
            data_dir: "x".into(),
            ready_timeout: 60,
            insecure: false,
        }
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
