//! Incoming side of the transport: read frames, hand each request to the
//! [`Dispatch`] on its own task, and write responses back in batches.

use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use super::frame::{encode_frame, encode_response, read_frame, Frame, Request, Response, WireError, MAX_FRAME};
use super::{BoxFuture, BoxStream};

/// Bytes read from a peer connection at a time.
pub(super) const READ_BUFFER: usize = 64 * 1024;

/// Where incoming requests go, with who sent them.
pub trait Dispatch: Send + Sync + 'static {
    fn dispatch(
        &self,
        from: PeerId,
        group: String,
        epoch: u64,
        body: Request,
    ) -> BoxFuture<Result<Response, WireError>>;
}

/// Who is at the other end of an incoming peer connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerId {
    /// Nobody vouched for it: a node started with `--insecure` (or a
    /// simulated network) takes every peer at its word.
    Unverified,
    /// Node `n`, as the certificate it presented says.
    Node(u64),
}

impl PeerId {
    /// Whether a frame from this peer may claim to come from node `node`
    /// (a vote's candidate, an append's leader, a registration's id).
    pub fn may_speak_for(self, node: u64) -> bool {
        match self {
            PeerId::Unverified => true,
            PeerId::Node(n) => n == node,
        }
    }
}

/// What happens to an accepted stream before frames are read from it: a
/// TLS handshake that also says which node the peer is, or nothing.
pub trait Handshake: Send + Sync + 'static {
    fn accept(&self, stream: BoxStream, from: String) -> BoxFuture<std::io::Result<(BoxStream, PeerId)>>;
}

/// Streams taken as they are, from unverified peers.
pub struct Plain;

impl Handshake for Plain {
    fn accept(&self, stream: BoxStream, _from: String) -> BoxFuture<std::io::Result<(BoxStream, PeerId)>> {
        Box::pin(async move { Ok((stream, PeerId::Unverified)) })
    }
}

/// Accepts streams, with the address of whoever opened each: TCP by
/// default; TLS or a simulated network implement it too. A node serves its
/// peer, Redis and HTTP ports through one each.
pub trait Acceptor: Send + Sync + 'static {
    fn accept(&self) -> BoxFuture<std::io::Result<(BoxStream, String)>>;
    /// The address it is bound to (what a configured `:0` became).
    fn local_addr(&self) -> std::io::Result<String>;
}

/// Plain TCP with Nagle off: both ends batch their own writes.
pub struct TcpAcceptor(Arc<TcpListener>);

impl TcpAcceptor {
    pub fn new(listener: TcpListener) -> TcpAcceptor {
        TcpAcceptor(Arc::new(listener))
    }
}

impl Acceptor for TcpAcceptor {
    fn accept(&self) -> BoxFuture<std::io::Result<(BoxStream, String)>> {
        let l = self.0.clone();
        Box::pin(async move {
            let (s, from) = TcpListener::accept(&l).await?;
            s.set_nodelay(true)?;
            Ok((Box::new(s) as BoxStream, from.to_string()))
        })
    }

    fn local_addr(&self) -> std::io::Result<String> {
        self.0.local_addr().map(|a| a.to_string())
    }
}

/// Accept plain peer connections on a TCP `listener` until `shutdown` turns true.
pub async fn serve(listener: TcpListener, dispatch: Arc<dyn Dispatch>, shutdown: watch::Receiver<bool>) {
    serve_with(Arc::new(TcpAcceptor::new(listener)), Arc::new(Plain), dispatch, MAX_FRAME, shutdown).await
}

/// How long an accepted connection has to finish its handshake (on any
/// port): one that stalls is dropped instead of holding its task and socket.
pub const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Most handshakes under way on the peer port. A cluster's nodes open a
/// connection or two each; more at once is someone else, and waits in the
/// kernel's backlog.
const MAX_HANDSHAKES: usize = 64;

/// Accept peer streams from any [`Acceptor`], each through `handshake` on
/// its own task, taking frames of at most `max_frame` bytes, until
/// `shutdown` turns true.
pub async fn serve_with(
    acceptor: Arc<dyn Acceptor>,
    handshake: Arc<dyn Handshake>,
    dispatch: Arc<dyn Dispatch>,
    max_frame: usize,
    mut shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else { return };
        tokio::select! {
            biased;
            _ = shutdown.changed() => return,
            r = acceptor.accept() => match r {
                Ok((s, from)) => {
                    let (handshake, dispatch) = (handshake.clone(), dispatch.clone());
                    tokio::spawn(async move {
                        let done = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake.accept(s, from.clone())).await;
                        drop(permit);
                        match done {
                            Ok(Ok((s, peer))) => serve_stream(s, peer, dispatch, max_frame).await,
                            Ok(Err(e)) => tracing::warn!(%from, error = %e, "peer refused"),
                            Err(_) => tracing::warn!(%from, "peer handshake timed out"),
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "peer accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
        }
    }
}

/// Serve one peer connection until it closes or sends a malformed frame.
pub async fn serve_stream(stream: BoxStream, peer: PeerId, dispatch: Arc<dyn Dispatch>, max_frame: usize) {
    let (r, mut w) = tokio::io::split(stream);
    // Frames arrive many to a segment: read them from a buffer, not with
    // two reads each.
    let mut r = tokio::io::BufReader::with_capacity(READ_BUFFER, r);
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    // The pieces of answers longer than a frame go apart, one per write
    // at most, so that Raft's answers never wait behind a long answer.
    let (pieces_tx, mut pieces_rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let writer = tokio::spawn(async move {
        let mut buf = Vec::with_capacity(64 * 1024);
        loop {
            // A closed queue's branch is skipped; both closed ends the writer.
            let (first, piece) = tokio::select! {
                biased;
                Some(frame) = rx.recv() => (frame, false),
                Some(piece) = pieces_rx.recv() => (piece, true),
                else => break,
            };
            buf.clear();
            buf.extend_from_slice(&first);
            while let Ok(more) = rx.try_recv() {
                buf.extend_from_slice(&more);
                if buf.len() > 1 << 20 {
                    break;
                }
            }
            if !piece {
                if let Ok(piece) = pieces_rx.try_recv() {
                    buf.extend_from_slice(&piece);
                }
            }
            if w.write_all(&buf).await.is_err() {
                return;
            }
        }
    });
    let mut scratch = Vec::new();
    loop {
        match read_frame(&mut r, &mut scratch, max_frame).await {
            Ok(Some(Frame::Request { id, group, .. })) if group == super::PROBE_GROUP => {
                // A liveness probe (see `peers::probe`): answered here, not
                // behind any group's work.
                let mut bytes = Vec::new();
                let frame = Frame::Response { id, body: Ok(Response::App(Vec::new())) };
                encode_frame(&frame, &mut bytes, max_frame).expect("an empty answer fits a frame");
                let _ = tx.send(bytes);
            }
            Ok(Some(Frame::Request { id, group, epoch, body })) => {
                let d = dispatch.clone();
                let (tx, pieces_tx) = (tx.clone(), pieces_tx.clone());
                tokio::spawn(async move {
                    let body = d.dispatch(peer, group, epoch, body).await;
                    let mut frames = encode_response(id, body, max_frame);
                    if frames.len() == 1 {
                        let _ = tx.send(frames.pop().expect("one frame"));
                    } else {
                        for piece in frames {
                            let _ = pieces_tx.send(piece);
                        }
                    }
                });
            }
            Ok(Some(Frame::Response { .. })) => {
                tracing::warn!("peer sent a response on an incoming connection; closing");
                break;
            }
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(error = %e, "closing peer connection");
                break;
            }
        }
    }
    drop(tx);
    drop(pieces_tx);
    let _ = writer.await;
}
