//! The simulated network and clock a node is handed: turmoil's TCP behind
//! tidal's acceptor and connector traits, and turmoil's wall clock.

use std::io;

use tidal_raft::transport::{Acceptor, BoxFuture, BoxStream, Connector};

/// Accepts turmoil TCP connections on a host's listener.
pub struct SimAcceptor {
    listener: std::sync::Arc<turmoil::net::TcpListener>,
    /// What the node advertises for it (a listener binds 0.0.0.0).
    addr: String,
}

impl SimAcceptor {
    /// Binds `port` on the calling host; `advertised` is the address other
    /// hosts reach it at.
    pub async fn bind(port: u16, advertised: String) -> io::Result<SimAcceptor> {
        let listener = turmoil::net::TcpListener::bind(("0.0.0.0", port)).await?;
        Ok(SimAcceptor { listener: std::sync::Arc::new(listener), addr: advertised })
    }
}

impl Acceptor for SimAcceptor {
    fn accept(&self) -> BoxFuture<io::Result<(BoxStream, String)>> {
        let l = self.listener.clone();
        Box::pin(async move {
            let (s, from) = l.accept().await?;
            Ok((Box::new(s) as BoxStream, from.to_string()))
        })
    }

    fn local_addr(&self) -> io::Result<String> {
        Ok(self.addr.clone())
    }
}

/// Dials peers over turmoil TCP.
pub struct SimConnector;

impl Connector for SimConnector {
    fn connect(&self, addr: String) -> BoxFuture<io::Result<BoxStream>> {
        Box::pin(async move {
            let s = turmoil::net::TcpStream::connect(addr).await?;
            Ok(Box::new(s) as BoxStream)
        })
    }
}

/// The simulation's wall clock (Unix milliseconds), plus a skew the
/// harness may set to make a node's clock jump.
#[derive(Default)]
pub struct SimClock {
    pub skew_ms: std::sync::atomic::AtomicI64,
}

impl tidal_node::Clock for SimClock {
    fn now_ms(&self) -> u64 {
        let now = turmoil::since_epoch().map_or(0, |d| d.as_millis() as i64);
        (now + self.skew_ms.load(std::sync::atomic::Ordering::Relaxed)).max(0) as u64
    }
}
