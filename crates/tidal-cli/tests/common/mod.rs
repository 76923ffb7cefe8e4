//! Shared support for process-level tests: a cluster of real `tidal node`
//! processes on free 127.0.0.1 ports, a small RESP client, and waits on
//! conditions with deadlines (never fixed sleeps for correctness).
#![allow(dead_code)]

pub mod proxy;
pub mod resp;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[allow(unused_imports)]
pub use resp::{Client, Value};

pub const BIN: &str = env!("CARGO_BIN_EXE_tidal");

/// Poll `f` until it returns `Some`, or panic with `what` after `timeout`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A port free right now, below the kernel's ephemeral range (32768 and
/// up): a port the kernel handed out for `:0` can be handed out again as
/// the source port of an outgoing connection before the node binds it.
/// Never the same port twice in one test process: a node stopped for a
/// restart leaves its ports free, and another test must not take them.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static GIVEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let clock = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let seed = (std::process::id() as u64) << 32 ^ clock;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let mut x = (seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x ^= x >> 31;
        let port = 10_000 + (x % 22_000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() && GIVEN.lock().unwrap().insert(port) {
            return port;
        }
    }
}

pub struct NodeProc {
    pub id: u64,
    /// The peer address the node advertises (its proxy's, when proxied).
    pub peer: String,
    /// Where the node listens for peers, when a proxy stands in front.
    pub listen: Option<String>,
    pub redis: String,
    pub http: String,
    pub dir: PathBuf,
    pub child: Option<Child>,
    /// Joins through this peer address instead of `--peers`.
    pub join: Option<String>,
}

pub struct Cluster {
    pub nodes: Vec<NodeProc>,
    pub extra: Vec<String>,
    /// The fault-injecting proxy every peer connection goes through, if any.
    pub proxy: Option<std::sync::Arc<proxy::Proxy>>,
    /// The CA directory of a cluster started with certificates
    /// ([`Cluster::start_secure`]); `None`: every node runs `--insecure`.
    pub certs: Option<PathBuf>,
    _tmp: tempdir::TempDir,
}

pub mod tempdir {
    use std::path::{Path, PathBuf};

    /// A directory removed when dropped.
    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new(prefix: &str) -> TempDir {
            let n = std::process::id();
            let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
            let p = std::env::temp_dir().join(format!("{prefix}-{n}-{t}"));
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            // A failing test keeps its nodes' data and logs for a look (and
            // every test does with TIDAL_TEST_KEEP set).
            if std::thread::panicking() || std::env::var_os("TIDAL_TEST_KEEP").is_some() {
                eprintln!("kept {} for inspection", self.0.display());
                return;
            }
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Cluster {
    /// Start `n` nodes with `extra` flags each and wait until all are ready.
    pub fn start(n: u64, extra: &[&str]) -> Cluster {
        Cluster::start_with(n, extra, None)
    }

    /// Start `n` nodes whose peer connections all go through `proxy`.
    pub fn start_proxied(n: u64, extra: &[&str], proxy: std::sync::Arc<proxy::Proxy>) -> Cluster {
        Cluster::start_with(n, extra, Some(proxy))
    }

    /// Start `n` nodes with certificates from a CA of their own (made with
    /// `tidal certs`), and a `root` client certificate for the tests.
    pub fn start_secure(n: u64, extra: &[&str]) -> Cluster {
        Cluster::start_full(n, extra, None, true)
    }

    fn start_with(n: u64, extra: &[&str], proxy: Option<std::sync::Arc<proxy::Proxy>>) -> Cluster {
        Cluster::start_full(n, extra, proxy, false)
    }

    fn start_full(n: u64, extra: &[&str], proxy: Option<std::sync::Arc<proxy::Proxy>>, secure: bool) -> Cluster {
        let tmp = tempdir::TempDir::new("tidal-test");
        let certs = secure.then(|| {
            let dir = tmp.path().join("certs");
            certs_cmd(&["init", "--dir"], &dir);
            certs_cmd(&["client", "--name", "root", "--dir"], &dir);
            dir
        });
        let mut c = Cluster {
            nodes: Vec::new(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            proxy,
            certs,
            _tmp: tmp,
        };
        for id in 1..=n {
            let node = c.new_node(id, None);
            c.nodes.push(node);
        }
        for i in 0..c.nodes.len() {
            c.spawn(i);
        }
        c.wait_all_ready(Duration::from_secs(60));
        c
    }

    /// Node `id`'s addresses and directory; behind the proxy when there is one.
    fn new_node(&self, id: u64, join: Option<String>) -> NodeProc {
        let peer = format!("127.0.0.1:{}", free_port());
        let listen = self.proxy.as_ref().map(|p| {
            let backend = format!("127.0.0.1:{}", free_port());
            p.forward(id, &peer, &backend);
            backend
        });
        NodeProc {
            id,
            peer,
            listen,
            redis: format!("127.0.0.1:{}", free_port()),
            http: format!("127.0.0.1:{}", free_port()),
            dir: self._tmp.path().join(format!("node-{id}")),
            child: None,
            join,
        }
    }

    fn peers(&self) -> String {
        self.nodes
            .iter()
            .filter(|n| n.join.is_none())
            .map(|n| format!("{}={}", n.id, n.peer))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Add a node that joins through node 0 with `--join`; returns its index.
    pub fn add_joiner(&mut self) -> usize {
        let id = self.nodes.len() as u64 + 1;
        let node = self.new_node(id, Some(self.nodes[0].peer.clone()));
        self.nodes.push(node);
        let i = self.nodes.len() - 1;
        self.spawn(i);
        i
    }

    /// Start (or restart) node at index `i` on its same ports and data.
    pub fn spawn(&mut self, i: usize) {
        let peers = self.peers();
        let security = match &self.certs {
            Some(ca) => {
                let id = self.nodes[i].id.to_string();
                let dir = ca.join(format!("node-{id}"));
                if !dir.join("node.crt").exists() {
                    certs_cmd(&["node", "--id", &id, "--dir"], ca);
                }
                vec!["--certs-dir".to_string(), dir.display().to_string()]
            }
            None => vec!["--insecure".to_string()],
        };
        let n = &mut self.nodes[i];
        std::fs::create_dir_all(&n.dir).unwrap();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(n.dir.join("node.log")).unwrap();
        let child = Command::new(BIN)
            .arg("node")
            .args(["--node-id", &n.id.to_string(), "--listen", n.listen.as_ref().unwrap_or(&n.peer)])
            .args(["--client-addr", &n.redis])
            .args(match &n.listen {
                Some(_) => vec![
                    "--advertise".to_string(),
                    n.peer.clone(),
                    "--peer-source-ip".to_string(),
                    proxy::source_ip(n.id).to_string(),
                ],
                None => Vec::new(),
            })
            .args(["--http-addr", &n.http])
            .args(match &n.join {
                Some(j) => ["--join", j.as_str()],
                None => ["--peers", peers.as_str()],
            })
            .arg("--data-dir")
            .arg(&n.dir)
            .args(&security)
            .args(&self.extra)
            .env("TIDAL_LOG", "info,openraft=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn tidal node");
        n.child = Some(child);
    }

    /// SIGSTOP (`true`) or SIGCONT (`false`) node `i`.
    pub fn pause(&self, i: usize, stop: bool) {
        if let Some(c) = &self.nodes[i].child {
            let signal = if stop { "-STOP" } else { "-CONT" };
            let ok = Command::new("kill").args([signal, &c.id().to_string()]).status().is_ok_and(|s| s.success());
            assert!(ok, "kill {signal} node {}", self.nodes[i].id);
        }
    }

    /// SIGKILL node `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn ready(&self, i: usize) -> bool {
        self.get(i, "/readyz").map(|(code, _)| code == 200).unwrap_or(false)
    }

    /// GET `path` from node `i`'s HTTP port: over HTTPS with the `root`
    /// client certificate on a cluster with certificates.
    pub fn get(&self, i: usize, path: &str) -> std::io::Result<(u16, String)> {
        match &self.certs {
            Some(ca) => https(&self.nodes[i].http, "GET", path, ca, Some("root"), None),
            None => http_get(&self.nodes[i].http, path),
        }
    }

    /// Wait until node `i` is ready; on timeout, fail with why it is not
    /// and the end of its log.
    pub fn wait_ready(&self, i: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.ready(i) {
            if Instant::now() > deadline {
                let why = self.get(i, "/why").map(|(_, b)| b).unwrap_or_else(|e| e.to_string());
                let log = self.log(i);
                let tail: Vec<&str> = log.lines().rev().take(30).collect();
                let others: String = (0..self.nodes.len())
                    .filter(|&k| k != i)
                    .map(|k| {
                        let log = self.log(k);
                        let worst: Vec<&str> = log.lines().filter(|l| l.contains("panicked")).take(5).collect();
                        format!("node {}: {} log lines, panics: {worst:?}\n", self.nodes[k].id, log.lines().count())
                    })
                    .collect();
                panic!(
                    "node {} not ready after {timeout:?}: {why}\n--- last lines of its log ---\n{}\n--- others ---\n{others}",
                    self.nodes[i].id,
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn wait_all_ready(&self, timeout: Duration) {
        for i in 0..self.nodes.len() {
            if self.nodes[i].child.is_some() {
                self.wait_ready(i, timeout);
            }
        }
    }

    pub fn client(&self, i: usize) -> Client {
        Client::connect(&self.nodes[i].redis).expect("connect to node")
    }

    /// The node's log, for failure messages.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.nodes[i].dir.join("node.log")).unwrap_or_default()
    }

    /// Run the `tidal` CLI against node 0's admin API, with `--json`.
    pub fn tidal(&self, args: &[&str]) -> std::process::Output {
        self.run_tidal(args, &["--json"])
    }

    /// Run the `tidal` CLI against node 0's admin API for its text output.
    pub fn tidal_text(&self, args: &[&str]) -> String {
        let out = self.run_tidal(args, &[]);
        assert!(out.status.success(), "tidal {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn run_tidal(&self, args: &[&str], extra: &[&str]) -> std::process::Output {
        Command::new(BIN)
            .args(args)
            .args(["--http", &self.nodes[0].http])
            .args(extra)
            .env("TIDAL_LOG", "warn")
            .stdin(Stdio::null())
            .output()
            .expect("run tidal")
    }

    /// Node `i`'s routing table (`/api/v1/routing`).
    pub fn routing(&self, i: usize) -> serde_json::Value {
        let (_, body) = http_get(&self.nodes[i].http, "/api/v1/routing").unwrap();
        serde_json::from_str(&body).unwrap()
    }

    /// PRG `prg` as node `i` hosts it, if it does.
    pub fn group_on(&self, i: usize, prg: &str) -> Option<serde_json::Value> {
        self.groups(i)?.as_array()?.iter().find(|g| g["id"] == prg).cloned()
    }

    /// The leader of `prg` as the first running node hosting it sees it.
    pub fn leader_of(&self, prg: &str) -> Option<u64> {
        (0..self.nodes.len())
            .filter(|i| self.nodes[*i].child.is_some())
            .find_map(|i| self.group_on(i, prg)?["leader"].as_u64())
    }

    /// The control plane's leader, as the first running node sees it.
    pub fn cp_leader(&self) -> Option<u64> {
        let i = (0..self.nodes.len()).find(|i| self.nodes[*i].child.is_some())?;
        let (_, body) = http_get(&self.nodes[i].http, "/api/v1/cluster").ok()?;
        serde_json::from_str::<serde_json::Value>(&body).ok()?["cpLeader"].as_u64()
    }

    /// The control plane's voters, as node `i` knows them.
    pub fn cp_voters(&self, i: usize) -> Vec<u64> {
        let (_, body) = http_get(&self.nodes[i].http, "/api/v1/cluster").unwrap();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["cpMembers"].as_array().unwrap().iter().map(|n| n.as_u64().unwrap()).collect()
    }

    /// Wait until the control plane has `n` voters (its votes move onto
    /// nodes that join, which changes the state plans are made against).
    pub fn wait_cp_voters(&self, n: usize) {
        wait_for(Duration::from_secs(60), &format!("{n} control-plane voters"), || {
            (self.cp_voters(0).len() == n).then_some(())
        });
    }

    /// The move `id` as node `i` reports it, once it has finished (done or
    /// rolled back); waits up to `timeout`.
    pub fn finished_move(&self, i: usize, id: &str, timeout: Duration) -> serde_json::Value {
        wait_for(timeout, &format!("move {id} to finish"), || {
            let (code, body) = http_get(&self.nodes[i].http, &format!("/api/v1/moves/{id}")).ok()?;
            let m: serde_json::Value = serde_json::from_str(&body).ok()?;
            (code == 200 && (m["state"] == "done" || m["state"] == "rolled-back")).then_some(m)
        })
    }

    /// This node's view of its groups (`/api/v1/prgs`).
    pub fn groups(&self, i: usize) -> Option<serde_json::Value> {
        let (code, body) = http_get(&self.nodes[i].http, "/api/v1/prgs").ok()?;
        (code == 200).then(|| serde_json::from_str(&body).ok())?
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

/// The JSON a `tidal ... --json` command printed.
pub fn json_of(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON ({e}): stdout {} stderr {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The PRG that owns `slot` of tenant `default` by a routing table.
pub fn owner(routing: &serde_json::Value, slot: u64) -> String {
    let t = routing["tenants"].as_array().unwrap().iter().find(|t| t["name"] == "default").expect("tenant default");
    for r in t["ranges"].as_array().unwrap() {
        if r[0].as_u64().unwrap() <= slot && slot <= r[1].as_u64().unwrap() {
            return r[2].as_str().unwrap().to_string();
        }
    }
    panic!("slot {slot} has no owner in {routing}")
}

/// A minimal HTTP/1.1 request; returns (status, body).
pub fn http(addr: &str, method: &str, path: &str, body: &[u8]) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(15)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    s.write_all(body)?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let code = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((code, body))
}

pub fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    http(addr, "GET", path, b"")
}

/// Run `tidal certs ARGS DIR`.
pub fn certs_cmd(args: &[&str], dir: &std::path::Path) {
    let out = Command::new(BIN).arg("certs").args(args).arg(dir).output().expect("run tidal certs");
    assert!(out.status.success(), "tidal certs {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// An HTTPS request trusting only the CA in `ca_dir`, showing client
/// certificate `client` of that directory (or none) and `bearer` (or
/// none); the status and body, whatever the status.
pub fn https(
    addr: &str,
    method: &str,
    path: &str,
    ca_dir: &std::path::Path,
    client: Option<&str>,
    bearer: Option<&str>,
) -> std::io::Result<(u16, String)> {
    use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig, TlsProvider};
    let certs = |f: &str| -> Vec<Certificate<'static>> {
        let pem = std::fs::read(ca_dir.join(f)).unwrap();
        ureq::tls::parse_pem(&pem)
            .filter_map(|i| match i {
                Ok(PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect()
    };
    let mut tls = TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
        .root_certs(RootCerts::Specific(std::sync::Arc::new(certs("ca.crt"))));
    if let Some(name) = client {
        let key = PrivateKey::from_pem(&std::fs::read(ca_dir.join(format!("client.{name}.key"))).unwrap()).unwrap();
        tls = tls.client_cert(Some(ClientCert::new_with_certs(&certs(&format!("client.{name}.crt")), key)));
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .tls_config(tls.build())
        .build()
        .into();
    let url = format!("https://{addr}{path}");
    let mut req = match method {
        "POST" => agent.post(&url),
        "PUT" => agent.put(&url),
        _ => agent.get(&url).force_send_body(),
    };
    if let Some(b) = bearer {
        req = req.header("authorization", format!("Bearer {b}"));
    }
    let mut resp = req.send_empty().map_err(std::io::Error::other)?;
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_string().map_err(std::io::Error::other)?;
    Ok((status, body))
}
