//! A fault-injecting TCP proxy between real nodes.
//!
//! Each node advertises a proxy address for its peer port and dials its
//! peers from a loopback address of its own (`--peer-source-ip`), so the
//! proxy knows, for every connection, which node dialed which:
//!
//! ```text
//!   node a (dials from 127.0.1.a) ──► proxy for b (127.0.0.1:Qb) ──► node b (--listen 127.0.0.1:Pb)
//!                                      │ link a→b: bytes from a to b
//!                                      │ link b→a: bytes from b to a (answers)
//! ```
//!
//! A directed link is `Up`, `Delay`ed (every chunk waits, in order),
//! `Stall`ed (bytes are held, not lost, until the link heals: a one-way
//! partition as TCP sees one) or `Cut` (live connections are closed and new
//! ones refused: a partition). `sever` closes a link's live connections
//! once, as a dropped connection does, and lets the next one through.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Up,
    Delay(Duration),
    Stall,
    Cut,
}

/// How often an idle connection looks at its links again.
const RECHECK: Duration = Duration::from_millis(25);

#[derive(Default)]
struct Net {
    links: HashMap<(u64, u64), Link>,
    /// Bumped by `sever`; a connection opened at an older value closes.
    generation: HashMap<(u64, u64), u64>,
}

impl Net {
    fn link(&self, from: u64, to: u64) -> Link {
        self.links.get(&(from, to)).copied().unwrap_or(Link::Up)
    }

    fn generation(&self, a: u64, b: u64) -> u64 {
        self.generation.get(&(a.min(b), a.max(b))).copied().unwrap_or(0)
    }
}

/// The loopback address node `id` dials its peers from.
pub fn source_ip(id: u64) -> IpAddr {
    assert!((1..=250).contains(&id), "node ids 1..=250 have a source address");
    IpAddr::V4(Ipv4Addr::new(127, 0, 1, id as u8))
}

fn node_of(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(v4) if v4.octets()[..3] == [127, 0, 1] => v4.octets()[3] as u64,
        // Dialed from elsewhere (a tool): node 0, never faulted.
        _ => 0,
    }
}

pub struct Proxy {
    rt: tokio::runtime::Runtime,
    net: Arc<Mutex<Net>>,
}

impl Default for Proxy {
    fn default() -> Self {
        Proxy::new()
    }
}

impl Proxy {
    pub fn new() -> Proxy {
        let rt =
            tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("proxy runtime");
        Proxy { rt, net: Arc::default() }
    }

    /// Starts forwarding `listen` (the address node `to` advertises) to
    /// `backend` (where it listens).
    pub fn forward(&self, to: u64, listen: &str, backend: &str) {
        let listener = self.rt.block_on(TcpListener::bind(listen)).expect("bind proxy");
        let (net, backend) = (self.net.clone(), backend.to_string());
        self.rt.spawn(async move {
            loop {
                let Ok((client, addr)) = listener.accept().await else { continue };
                let from = node_of(addr.ip());
                let (net, backend) = (net.clone(), backend.clone());
                tokio::spawn(async move {
                    let refused = {
                        let n = net.lock().unwrap();
                        n.link(from, to) == Link::Cut || n.link(to, from) == Link::Cut
                    };
                    if refused {
                        return;
                    }
                    let Ok(server) = TcpStream::connect(&backend).await else { return };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let born = net.lock().unwrap().generation(from, to);
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    let up = tokio::spawn(pump(net.clone(), (from, to), born, cr, sw));
                    let down = tokio::spawn(pump(net, (to, from), born, sr, cw));
                    // When either half ends, close the whole connection.
                    tokio::select! {
                        _ = up => {}
                        _ = down => {}
                    }
                });
            }
        });
    }

    pub fn set(&self, from: u64, to: u64, link: Link) {
        self.net.lock().unwrap().links.insert((from, to), link);
    }

    /// Cuts `node` off from every node in `others`, both ways.
    pub fn isolate(&self, node: u64, others: impl IntoIterator<Item = u64>) {
        for other in others {
            if other != node {
                self.set(node, other, Link::Cut);
                self.set(other, node, Link::Cut);
            }
        }
    }

    /// Closes the live connections between `a` and `b` once.
    pub fn sever(&self, a: u64, b: u64) {
        *self.net.lock().unwrap().generation.entry((a.min(b), a.max(b))).or_default() += 1;
    }

    pub fn heal_all(&self) {
        self.net.lock().unwrap().links.clear();
    }

    /// Every link that is not `Up`, for a failure message.
    pub fn faults(&self) -> Vec<((u64, u64), Link)> {
        let mut v: Vec<_> = self.net.lock().unwrap().links.iter().map(|(k, l)| (*k, *l)).collect();
        v.sort_by_key(|(k, _)| *k);
        v
    }
}

/// Copies one direction of a connection, obeying link `dir` as it changes.
async fn pump(
    net: Arc<Mutex<Net>>,
    dir: (u64, u64),
    born: u64,
    mut from: tokio::net::tcp::OwnedReadHalf,
    to: tokio::net::tcp::OwnedWriteHalf,
) {
    // Delayed chunks go through a queue to a writer, so a delay holds each
    // chunk back without slowing the stream down.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let writer_net = net.clone();
    let writer = tokio::spawn(async move {
        let mut to = to;
        while let Some((due, bytes)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            // Held while stalled; dropped with the connection when cut.
            loop {
                let link = writer_net.lock().unwrap().link(dir.0, dir.1);
                match link {
                    Link::Cut => return,
                    Link::Stall => tokio::time::sleep(RECHECK).await,
                    Link::Up | Link::Delay(_) => break,
                }
            }
            if to.write_all(&bytes).await.is_err() {
                return;
            }
        }
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let (link, alive) = {
            let n = net.lock().unwrap();
            (n.link(dir.0, dir.1), n.generation(dir.0, dir.1) == born)
        };
        if link == Link::Cut || !alive || writer.is_finished() {
            break;
        }
        let read = match tokio::time::timeout(RECHECK, from.read(&mut buf)).await {
            Err(_) => continue,
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => n,
        };
        let delay = match link {
            Link::Delay(d) => d,
            _ => Duration::ZERO,
        };
        if tx.send((tokio::time::Instant::now() + delay, buf[..read].to_vec())).is_err() {
            break;
        }
    }
    writer.abort();
}
