//! Incoming side of the transport: read frames, hand each request to the
//! [`Dispatch`] on its own task, and write responses back in batches.

use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use super::frame::{encode_frame, read_frame, Frame, Request, Response, WireError};
use super::{BoxFuture, BoxStream};

/// Bytes read from a peer connection at a time.
pub(super) const READ_BUFFER: usize = 64 * 1024;

/// Where incoming requests go.
pub trait Dispatch: Send + Sync + 'static {
    fn dispatch(&self, group: String, epoch: u64, body: Request) -> BoxFuture<Result<Response, WireError>>;
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

/// Accept peer connections on a TCP `listener` until `shutdown` turns true.
pub async fn serve(listener: TcpListener, dispatch: Arc<dyn Dispatch>, shutdown: watch::Receiver<bool>) {
    serve_with(Arc::new(TcpAcceptor::new(listener)), dispatch, shutdown).await
}

/// Accept peer streams from any [`Acceptor`] until `shutdown` turns true.
pub async fn serve_with(acceptor: Arc<dyn Acceptor>, dispatch: Arc<dyn Dispatch>, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            biased;
            _ = shutdown.changed() => return,
            r = acceptor.accept() => match r {
                Ok((s, _)) => {
                    tokio::spawn(serve_stream(s, dispatch.clone()));
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
pub async fn serve_stream(stream: BoxStream, dispatch: Arc<dyn Dispatch>) {
    let (r, mut w) = tokio::io::split(stream);
    // Frames arrive many to a segment: read them from a buffer, not with
    // two reads each.
    let mut r = tokio::io::BufReader::with_capacity(READ_BUFFER, r);
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let writer = tokio::spawn(async move {
        let mut buf = Vec::with_capacity(64 * 1024);
        while let Some(first) = rx.recv().await {
            buf.clear();
            buf.extend_from_slice(&first);
            while let Ok(more) = rx.try_recv() {
                buf.extend_from_slice(&more);
                if buf.len() > 1 << 20 {
                    break;
                }
            }
            if w.write_all(&buf).await.is_err() {
                return;
            }
        }
    });
    let mut scratch = Vec::new();
    loop {
        match read_frame(&mut r, &mut scratch).await {
            Ok(Some(Frame::Request { id, group, epoch, body })) => {
                let d = dispatch.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let body = d.dispatch(group, epoch, body).await;
                    let mut bytes = Vec::new();
                    if let Err(e) = encode_frame(&Frame::Response { id, body }, &mut bytes) {
                        // The caller hears why instead of losing the connection.
                        let body = Err(WireError::Malformed(format!("response not sent: {e}")));
                        encode_frame(&Frame::Response { id, body }, &mut bytes).expect("a short error fits a frame");
                    }
                    let _ = tx.send(bytes);
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
    let _ = writer.await;
}
