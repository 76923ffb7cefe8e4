//! Three nodes in the test process, on port 0, each with a data directory
//! removed when the test ends.

use std::sync::Arc;

use crate::load::ProcUsage;
use crate::{DataDir, Network, Node, RawConfig, SystemClock};
use tokio::net::TcpListener;

/// A data directory removed when dropped.
pub struct Dir(pub std::path::PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts three nodes; `extra` adjusts each one's configuration. Their
/// directories are named after `prefix`.
pub async fn three_nodes(prefix: &str, extra: impl Fn(&mut RawConfig)) -> (Vec<Node>, Vec<Dir>) {
    let mut bound = Vec::new();
    for _ in 0..3 {
        let bind = || TcpListener::bind("127.0.0.1:0");
        bound.push((bind().await.unwrap(), bind().await.unwrap(), bind().await.unwrap()));
    }
    let addr = |l: &TcpListener| l.local_addr().unwrap().to_string();
    let peers: Vec<String> = bound.iter().enumerate().map(|(i, l)| format!("{}={}", i + 1, addr(&l.0))).collect();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let (mut nodes, mut dirs) = (Vec::new(), Vec::new());
    for (i, (peer, client, http)) in bound.into_iter().enumerate() {
        let dir = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}-{i}", std::process::id()));
        let mut raw = RawConfig {
            node_id: Some(i as u64 + 1),
            listen: Some(addr(&peer)),
            client_addr: Some(addr(&client)),
            http_addr: Some(addr(&http)),
            data_dir: Some(dir.clone()),
            peers: Some(peers.join(",")),
            insecure: Some(true),
            ..Default::default()
        };
        extra(&mut raw);
        let cfg = raw.resolve().unwrap();
        let net = Network::tcp(peer, client, http, &cfg);
        nodes.push(
            Node::start(cfg, net, Arc::new(DataDir(dir.clone())), Arc::new(SystemClock), Arc::new(ProcUsage))
                .await
                .unwrap(),
        );
        dirs.push(Dir(dir));
    }
    (nodes, dirs)
}
