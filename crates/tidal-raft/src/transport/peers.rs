//! Outgoing side of the transport: a queue and a task per peer.
//!
//! The task connects lazily, writes everything queued in one `write_all`,
//! and a reader task matches responses to callers by request id. A broken
//! connection fails every outstanding call with `Unreachable`; the next call
//! reconnects.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};

use super::frame::{encode_frame, read_frame, Frame, FrameTooLarge, Request, Response, WireError};
use super::Connector;

/// Why a call to a peer failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("peer {addr} unreachable: {reason}")]
    Unreachable { addr: String, reason: String },
    #[error("peer {addr} did not answer within {ms} ms")]
    Timeout { addr: String, ms: u64 },
    #[error(transparent)]
    Remote(#[from] WireError),
    /// Not sent: the peer would refuse a frame this long (and close the
    /// connection every group shares with it).
    #[error("not sent to peer {addr}: {reason}")]
    TooLarge { addr: String, reason: FrameTooLarge },
}

struct PeerHandle {
    tx: mpsc::UnboundedSender<Vec<u8>>,
    link: Arc<Link>,
}

/// What the callers of a peer share with its peer task.
#[derive(Default)]
struct Link {
    /// Calls sent and not yet answered, by request id.
    pending: Mutex<BTreeMap<u64, oneshot::Sender<Result<Response, CallError>>>>,
    /// Answers received from the peer, on any connection; only compared.
    heard: AtomicU64,
    /// Raised by a call that timed out while nothing at all came back: the
    /// connection may be dead without either end knowing (a peer whose host
    /// vanished, a network that dropped what was in flight), so the peer
    /// task drops it and the next call dials again.
    silent: AtomicBool,
    wake: tokio::sync::Notify,
}

/// Connections to every peer this node talks to.
pub struct Peers {
    connector: Arc<dyn Connector>,
    conns: Mutex<BTreeMap<String, Arc<PeerHandle>>>,
    next_id: AtomicU64,
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

impl Peers {
    pub fn new(connector: Arc<dyn Connector>) -> Arc<Self> {
        Arc::new(Self { connector, conns: Mutex::default(), next_id: AtomicU64::new(1) })
    }

    fn handle(&self, addr: &str) -> Arc<PeerHandle> {
        let mut conns = self.conns.lock().expect("peers lock");
        if let Some(h) = conns.get(addr) {
            if !h.tx.is_closed() {
                return h.clone();
            }
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let h = Arc::new(PeerHandle { tx, link: Arc::default() });
        tokio::spawn(peer_task(addr.to_string(), self.connector.clone(), rx, h.link.clone()));
        conns.insert(addr.to_string(), h.clone());
        h
    }

    /// Send `body` for `group` to the node at `addr` and wait for its answer.
    pub async fn call(
        &self,
        addr: &str,
        group: &str,
        epoch: u64,
        body: Request,
        timeout: Duration,
    ) -> Result<Response, CallError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut bytes = Vec::new();
        encode_frame(&Frame::Request { id, group: group.to_string(), epoch, body }, &mut bytes)
            .map_err(|reason| CallError::TooLarge { addr: addr.to_string(), reason })?;
        let h = self.handle(addr);
        let (tx, rx) = oneshot::channel();
        let heard = h.link.heard.load(Ordering::Relaxed);
        h.link.pending.lock().expect("pending lock").insert(id, tx);
        if h.tx.send(bytes).is_err() {
            h.link.pending.lock().expect("pending lock").remove(&id);
            return Err(CallError::Unreachable { addr: addr.to_string(), reason: "peer task stopped".into() });
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(CallError::Unreachable { addr: addr.to_string(), reason: "connection closed".into() }),
            Err(_) => {
                h.link.pending.lock().expect("pending lock").remove(&id);
                if h.link.heard.load(Ordering::Relaxed) == heard {
                    h.link.silent.store(true, Ordering::Relaxed);
                    h.link.wake.notify_one();
                }
                Err(CallError::Timeout { addr: addr.to_string(), ms: timeout.as_millis() as u64 })
            }
        }
    }
}

fn fail_all(link: &Link, addr: &str, reason: &str) {
    let drained = std::mem::take(&mut *link.pending.lock().expect("pending lock"));
    for (_, tx) in drained {
        let _ = tx.send(Err(CallError::Unreachable { addr: addr.to_string(), reason: reason.to_string() }));
    }
}

async fn peer_task(
    addr: String,
    connector: Arc<dyn Connector>,
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
    link: Arc<Link>,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    'connect: loop {
        // Connect lazily, when there is something to send.
        let Some(first) = rx.recv().await else { return };
        buf.clear();
        buf.extend_from_slice(&first);
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(addr.clone())).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                fail_all(&link, &addr, &e.to_string());
                while rx.try_recv().is_ok() {}
                continue;
            }
            Err(_) => {
                fail_all(&link, &addr, "connect timed out");
                while rx.try_recv().is_ok() {}
                continue;
            }
        };
        // A call that went silent on an earlier connection says nothing about this one.
        link.silent.store(false, Ordering::Relaxed);
        let (r, mut w) = tokio::io::split(stream);
        let mut r = tokio::io::BufReader::with_capacity(super::server::READ_BUFFER, r);
        let (dead_tx, mut dead_rx) = oneshot::channel::<()>();
        let rlink = link.clone();
        let raddr = addr.clone();
        let reader = tokio::spawn(async move {
            let mut scratch = Vec::new();
            loop {
                match read_frame(&mut r, &mut scratch).await {
                    Ok(Some(Frame::Response { id, body })) => {
                        rlink.heard.fetch_add(1, Ordering::Relaxed);
                        let tx = rlink.pending.lock().expect("pending lock").remove(&id);
                        if let Some(tx) = tx {
                            let _ = tx.send(body.map_err(CallError::Remote));
                        }
                    }
                    Ok(Some(Frame::Request { .. })) => {
                        tracing::warn!(peer = %raddr, "peer sent a request on an outgoing connection; closing");
                        break;
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::debug!(peer = %raddr, error = %e, "peer connection read failed");
                        break;
                    }
                }
            }
            let _ = dead_tx.send(());
        });
        loop {
            while let Ok(more) = rx.try_recv() {
                buf.extend_from_slice(&more);
                if buf.len() > 1 << 20 {
                    break;
                }
            }
            if let Err(e) = w.write_all(&buf).await {
                tracing::debug!(peer = %addr, error = %e, "peer connection write failed");
                break;
            }
            buf.clear();
            tokio::select! {
                m = rx.recv() => match m {
                    Some(m) => buf.extend_from_slice(&m),
                    None => { reader.abort(); return; }
                },
                _ = &mut dead_rx => break,
                _ = link.wake.notified() => {
                    if link.silent.swap(false, Ordering::Relaxed) {
                        tracing::debug!(peer = %addr, "no answer within a call's timeout; reconnecting");
                        break;
                    }
                }
            }
        }
        reader.abort();
        fail_all(&link, &addr, "connection lost");
        // Anything queued but unsent was registered in `pending` and has
        // just failed; drop its bytes.
        while rx.try_recv().is_ok() {}
        continue 'connect;
    }
}
