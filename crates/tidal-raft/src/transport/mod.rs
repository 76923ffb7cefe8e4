//! The peer transport: one long-lived connection per peer carries the
//! traffic of every group the two nodes share.
//!
//! ```text
//!  group a ─┐                                    ┌─> a's Raft
//!  group b ─┼─> Peers::call ─> per-peer queue ═══╪═> Server ─> Dispatch ─> b's Raft
//!  router  ─┘   (one writer task drains the      └─> app handler (forwarded commands)
//!                queue into one batched write)
//! ```
//!
//! Streams are boxed `AsyncRead + AsyncWrite`, produced by a [`Connector`] on
//! the dialing side and by an [`Acceptor`] on the accepting side, so a TLS
//! layer or a simulated network slots in without touching the protocol.

mod frame;
mod network;
mod peers;
mod server;

use std::future::Future;
use std::io;
use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncWrite};

pub use frame::{
    decode_frame, encode_frame, encode_response, read_frame, Frame, FrameError, FrameTooLarge, Request, Response,
    WireError, MAX_ANSWER, MAX_FRAME,
};
pub use network::{paced_piece_bytes, GroupNetwork, SentBytes, SnapshotPacer};
pub use peers::{CallError, Peers};
pub use server::{
    serve, serve_stream, serve_with, Acceptor, Dispatch, Handshake, PeerId, Plain, TcpAcceptor, HANDSHAKE_TIMEOUT,
};

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The group name of a liveness probe: a request the receiving transport
/// answers itself, so that a peer whose groups are slow is told from a dead
/// connection. No group can be named so (group names are `tenant:index`).
pub(crate) const PROBE_GROUP: &str = "_probe";

/// A byte stream between two nodes.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for T {}

pub type BoxStream = Box<dyn Stream>;

/// Opens streams to peers by address.
pub trait Connector: Send + Sync + 'static {
    fn connect(&self, addr: String) -> BoxFuture<io::Result<BoxStream>>;
}

/// Plain TCP with Nagle off: frames are already batched.
pub struct TcpConnector;

impl Connector for TcpConnector {
    fn connect(&self, addr: String) -> BoxFuture<io::Result<BoxStream>> {
        Box::pin(async move {
            let s = tokio::net::TcpStream::connect(addr).await?;
            s.set_nodelay(true)?;
            Ok(Box::new(s) as BoxStream)
        })
    }
}

/// Plain TCP from a chosen local address: on a host with several, the one
/// peers (and their firewalls) see this node's connections come from.
pub struct SourceTcpConnector(pub std::net::IpAddr);

impl Connector for SourceTcpConnector {
    fn connect(&self, addr: String) -> BoxFuture<io::Result<BoxStream>> {
        let source = self.0;
        Box::pin(async move {
            let target = tokio::net::lookup_host(&addr)
                .await?
                .find(|a| a.is_ipv4() == source.is_ipv4())
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{addr}: no address like {source}")))?;
            let socket =
                if source.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
            socket.bind(std::net::SocketAddr::new(source, 0))?;
            let s = socket.connect(target).await?;
            s.set_nodelay(true)?;
            Ok(Box::new(s) as BoxStream)
        })
    }
}
