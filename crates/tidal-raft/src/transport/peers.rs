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

use super::frame::{encode_frame, read_frame, Frame, FrameTooLarge, Request, Response, WireError, MAX_ANSWER};
use super::Connector;

/// Why a call to a peer failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The request was written to a connection that then failed, or its
    /// fate is otherwise unknown: the peer may have acted on it.
    #[error("peer {addr} unreachable: {reason}")]
    Unreachable { addr: String, reason: String },
    /// The request never left this node: no connection could be made, or
    /// the peer is not known.
    #[error("peer {addr} unreachable, nothing sent: {reason}")]
    NotSent { addr: String, reason: String },
    #[error("peer {addr} did not answer within {ms} ms")]
    Timeout { addr: String, ms: u64 },
    #[error(transparent)]
    Remote(#[from] WireError),
    /// Not sent: the peer would refuse a frame this long (and close the
    /// connection every group shares with it).
    #[error("not sent to peer {addr}: {reason}")]
    TooLarge { addr: String, reason: FrameTooLarge },
}

impl CallError {
    /// True when the peer certainly did not act on the request: it was
    /// not sent, or the peer answered that it refused it. A timeout or a
    /// connection lost after sending says nothing either way.
    pub fn not_acted_on(&self) -> bool {
        matches!(self, CallError::NotSent { .. } | CallError::TooLarge { .. } | CallError::Remote(_))
    }
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
    /// Raised when calls have waited [`SILENT_AFTER`] while nothing at
    /// all came back: the connection may be dead without either end knowing (a peer whose host
    /// vanished, a network that dropped what was in flight), so the peer
    /// task drops it and the next call dials again.
    silent: AtomicBool,
    wake: tokio::sync::Notify,
    /// A liveness probe is out (see [`probe`]); one at a time.
    probing: AtomicBool,
    /// Ids of probes, counted apart from calls' (see [`PROBE_ID`]).
    probes: AtomicU64,
}

impl Link {
    /// Have the peer task drop this connection, failing every call in
    /// flight on it (see `silent`).
    fn drop_as_silent(&self) {
        self.silent.store(true, Ordering::Relaxed);
        self.wake.notify_one();
    }
}

/// A call whose connection closed before its answer came.
fn closed(addr: &str) -> CallError {
    CallError::Unreachable { addr: addr.to_string(), reason: "connection closed".into() }
}

/// Probe ids have the top bit set; calls' ids count up from 1 and never
/// reach it.
const PROBE_ID: u64 = 1 << 63;

/// How long a connection may go without any answer while calls wait on it
/// before it is taken for dead, dropped (failing every call in flight on
/// it) and dialled again.
const SILENT_AFTER: Duration = Duration::from_secs(1);

/// Connections to every peer this node talks to.
pub struct Peers {
    connector: Arc<dyn Connector>,
    /// Longest frame sent or taken: what every node of the cluster accepts.
    max_frame: usize,
    conns: Mutex<BTreeMap<String, Arc<PeerHandle>>>,
    next_id: AtomicU64,
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

impl Peers {
    pub fn new(connector: Arc<dyn Connector>, max_frame: usize) -> Arc<Self> {
        let max_frame = max_frame.min(super::MAX_FRAME);
        Arc::new(Self { connector, max_frame, conns: Mutex::default(), next_id: AtomicU64::new(1) })
    }

    /// The longest frame sent to or taken from a peer.
    pub fn max_frame(&self) -> usize {
        self.max_frame
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
        tokio::spawn(peer_task(addr.to_string(), self.connector.clone(), rx, h.link.clone(), self.max_frame));
        conns.insert(addr.to_string(), h.clone());
        h
    }

    /// Queue `body` for `group` on the connection to `addr`: the
    /// connection, where its answer will come, the call's id, and what the
    /// connection had heard before.
    fn start(&self, addr: &str, group: &str, epoch: u64, body: Request) -> Result<Started, CallError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut bytes = Vec::new();
        encode_frame(&Frame::Request { id, group: group.to_string(), epoch, body }, &mut bytes, self.max_frame)
            .map_err(|reason| CallError::TooLarge { addr: addr.to_string(), reason })?;
        let h = self.handle(addr);
        let (tx, rx) = oneshot::channel();
        let heard = h.link.heard.load(Ordering::Relaxed);
        h.link.pending.lock().expect("pending lock").insert(id, tx);
        if h.tx.send(bytes).is_err() {
            h.link.pending.lock().expect("pending lock").remove(&id);
            return Err(CallError::NotSent { addr: addr.to_string(), reason: "peer task stopped".into() });
        }
        Ok((h, rx, id, heard))
    }

    /// Like [`Peers::call`], for a request the peer may work on for long
    /// (a script runs until it ends): waits up to `max`, and after each
    /// `slice` without an answer asks the peer's transport whether the
    /// connection lives, so a dead peer fails the call within a slice and
    /// a probe, not after `max`.
    pub async fn call_patiently(
        &self,
        addr: &str,
        group: &str,
        epoch: u64,
        body: Request,
        (slice, max): (Duration, Duration),
    ) -> Result<Response, CallError> {
        let (h, mut rx, id, _) = self.start(addr, group, epoch, body)?;
        let deadline = tokio::time::Instant::now() + max;
        let forget = || h.link.pending.lock().expect("pending lock").remove(&id);
        loop {
            let wait = slice.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
            match tokio::time::timeout(wait, &mut rx).await {
                Ok(Ok(r)) => return r,
                Ok(Err(_)) => return Err(closed(addr)),
                Err(_) if tokio::time::Instant::now() >= deadline => {
                    forget();
                    return Err(CallError::Timeout { addr: addr.to_string(), ms: max.as_millis() as u64 });
                }
                Err(_) if probe(&h, SILENT_AFTER).await => {}
                Err(_) => {
                    forget();
                    h.link.drop_as_silent();
                    return Err(CallError::Unreachable {
                        addr: addr.to_string(),
                        reason: "no answer to a liveness probe while a long call waited".into(),
                    });
                }
            }
        }
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
        let (h, rx, id, heard) = self.start(addr, group, epoch, body)?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(closed(addr)),
            Err(_) => {
                h.link.pending.lock().expect("pending lock").remove(&id);
                if h.link.heard.load(Ordering::Relaxed) == heard && !h.link.probing.swap(true, Ordering::Relaxed) {
                    // Nothing came back while this call waited: the peer
                    // is busy (its groups wait on a slow disk, say) or the
                    // connection is dead. Ask the peer's transport, which
                    // answers at once however long its groups take; a
                    // connection on which nothing at all comes back
                    // within [`SILENT_AFTER`] is dead.
                    let h = h.clone();
                    tokio::spawn(async move {
                        let answered = probe(&h, SILENT_AFTER).await;
                        if !answered && h.link.heard.load(Ordering::Relaxed) == heard {
                            h.link.drop_as_silent();
                        }
                        h.link.probing.store(false, Ordering::Relaxed);
                    });
                }
                Err(CallError::Timeout { addr: addr.to_string(), ms: timeout.as_millis() as u64 })
            }
        }
    }
}

/// A call on its way: see [`Peers::start`].
type Started = (Arc<PeerHandle>, oneshot::Receiver<Result<Response, CallError>>, u64, u64);

/// Send a liveness probe on `h`'s connection: true when any answer to it
/// comes back within `wait`. The peer's transport answers a probe itself,
/// without waiting on any group (see `server::serve_stream`); a node that
/// does not know probes refuses the unknown group, which is an answer too.
async fn probe(h: &PeerHandle, wait: Duration) -> bool {
    let id = PROBE_ID | h.link.probes.fetch_add(1, Ordering::Relaxed);
    let mut bytes = Vec::new();
    let frame = Frame::Request { id, group: super::PROBE_GROUP.into(), epoch: 0, body: Request::App(Vec::new()) };
    encode_frame(&frame, &mut bytes, usize::MAX).expect("a probe fits any frame limit");
    let (tx, rx) = oneshot::channel();
    h.link.pending.lock().expect("pending lock").insert(id, tx);
    if h.tx.send(bytes).is_err() {
        h.link.pending.lock().expect("pending lock").remove(&id);
        return false;
    }
    let answered = matches!(tokio::time::timeout(wait, rx).await, Ok(Ok(_)));
    h.link.pending.lock().expect("pending lock").remove(&id);
    answered
}

/// Fail every pending call. `sent` says whether their bytes may have
/// reached the peer: calls pending when a connection fails may have been
/// written to it; calls pending while no connection could be made were
/// only queued (those written to the last connection failed with it).
fn fail_all(link: &Link, addr: &str, reason: &str, sent: bool) {
    let drained = std::mem::take(&mut *link.pending.lock().expect("pending lock"));
    for (_, tx) in drained {
        let (addr, reason) = (addr.to_string(), reason.to_string());
        let e = if sent { CallError::Unreachable { addr, reason } } else { CallError::NotSent { addr, reason } };
        let _ = tx.send(Err(e));
    }
}

async fn peer_task(
    addr: String,
    connector: Arc<dyn Connector>,
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
    link: Arc<Link>,
    max_frame: usize,
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
                fail_all(&link, &addr, &format!("connect: {e}"), false);
                while rx.try_recv().is_ok() {}
                continue;
            }
            Err(_) => {
                fail_all(&link, &addr, "connect timed out", false);
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
            // Answers arriving in pieces, by request id.
            let mut partial: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
            loop {
                match read_frame(&mut r, &mut scratch, max_frame).await {
                    Ok(Some(Frame::Response { id, body: Ok(Response::AppPart(piece)) })) => {
                        rlink.heard.fetch_add(1, Ordering::Relaxed);
                        let answer = partial.entry(id).or_default();
                        if answer.len() + piece.len() > MAX_ANSWER {
                            tracing::warn!(peer = %raddr, "peer sent an answer past {MAX_ANSWER} bytes; closing");
                            break;
                        }
                        answer.extend_from_slice(&piece);
                    }
                    Ok(Some(Frame::Response { id, mut body })) => {
                        rlink.heard.fetch_add(1, Ordering::Relaxed);
                        if let Some(mut answer) = partial.remove(&id) {
                            if let Ok(Response::App(last)) = &mut body {
                                answer.extend_from_slice(last);
                                *last = answer;
                            }
                        }
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
            // In a fixed order (the same run of a simulation takes the same
            // branch), a dead or silent connection before more to send.
            tokio::select! {
                biased;
                _ = &mut dead_rx => break,
                _ = link.wake.notified() => {
                    if link.silent.swap(false, Ordering::Relaxed) {
                        tracing::debug!(peer = %addr, "no answer within a call's timeout; reconnecting");
                        break;
                    }
                }
                m = rx.recv() => match m {
                    Some(m) => buf.extend_from_slice(&m),
                    None => { reader.abort(); return; }
                },
            }
        }
        reader.abort();
        fail_all(&link, &addr, "connection lost", true);
        // Anything queued but unsent was registered in `pending` and has
        // just failed; drop its bytes.
        while rx.try_recv().is_ok() {}
        continue 'connect;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::TcpConnector;
    use tokio::io::AsyncReadExt;

    fn peers() -> Arc<Peers> {
        Peers::new(Arc::new(TcpConnector), crate::transport::MAX_FRAME)
    }

    #[tokio::test]
    async fn a_call_that_could_not_connect_was_not_acted_on() {
        // Bind and drop: nothing listens on the port any more.
        let addr = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().to_string();
        let e = peers().call(&addr, "g", 1, Request::App(vec![1]), Duration::from_secs(5)).await.unwrap_err();
        assert!(matches!(e, CallError::NotSent { .. }), "{e:?}");
        assert!(e.not_acted_on());
    }

    #[tokio::test]
    async fn a_frame_past_the_limit_is_not_sent() {
        let peers = Peers::new(Arc::new(TcpConnector), 1 << 20);
        // Nothing listens there: a frame that were sent would fail otherwise.
        let e = peers.call("127.0.0.1:1", "g", 1, Request::App(vec![0; 1 << 20]), Duration::from_secs(5)).await;
        match e.unwrap_err() {
            CallError::TooLarge { reason, .. } => assert_eq!(reason.limit, 1 << 20),
            other => panic!("expected TooLarge, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_call_whose_connection_died_after_sending_may_have_been_acted_on() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            // Take the request, then go away without answering.
            let mut buf = [0u8; 64];
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0);
        });
        let e = peers().call(&addr, "g", 1, Request::App(vec![1]), Duration::from_secs(5)).await.unwrap_err();
        server.await.unwrap();
        assert!(matches!(e, CallError::Unreachable { .. }), "{e:?}");
        assert!(!e.not_acted_on(), "the peer read the request: it may have acted on it");
    }

    /// Answers every App request after `delay`, with `answer` of its bytes.
    struct Answering {
        delay: Duration,
        answer: fn(Vec<u8>) -> Vec<u8>,
    }

    impl crate::transport::Dispatch for Answering {
        fn dispatch(
            &self,
            _: crate::transport::PeerId,
            _: String,
            _: u64,
            body: Request,
        ) -> crate::transport::BoxFuture<Result<Response, WireError>> {
            let (delay, answer) = (self.delay, self.answer);
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                match body {
                    Request::App(b) => Ok(Response::App(answer(b))),
                    _ => Err(WireError::Malformed("not an app request".into())),
                }
            })
        }
    }

    /// `n` MiB and `n` bytes of a pattern.
    fn large(n: u8) -> Vec<u8> {
        (0..(usize::from(n) << 20) + usize::from(n)).map(|i| (i % 251) as u8 ^ n).collect()
    }

    #[tokio::test]
    async fn answers_longer_than_a_frame_arrive_whole_in_pieces() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let _server = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            let peer = crate::transport::PeerId::Unverified;
            let large = Arc::new(Answering { delay: Duration::ZERO, answer: |b| large(b[0]) });
            crate::transport::serve_stream(Box::new(s), peer, large, 1 << 20).await;
        });
        let p = Peers::new(Arc::new(TcpConnector), 1 << 20);
        // Answers of 5 MiB, 3 MiB and none at once: the long ones' pieces
        // interleaved on one connection, the short one beside them.
        let call = |n: u8| {
            let (p, addr) = (p.clone(), addr.clone());
            tokio::spawn(async move { p.call(&addr, "g", 1, Request::App(vec![n]), Duration::from_secs(30)).await })
        };
        let calls = [call(5), call(3), call(0)];
        for (n, c) in [5u8, 3, 0].into_iter().zip(calls) {
            match c.await.unwrap() {
                Ok(Response::App(b)) => assert!(b == large(n), "answer {n}: {} bytes", b.len()),
                other => panic!("answer {n}: {other:?}"),
            }
        }
    }

    /// The address of a peer that reads everything and answers nothing,
    /// probes included.
    async fn a_peer_that_never_answers() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 1024];
            while s.read(&mut buf).await.is_ok_and(|n| n > 0) {}
        });
        addr
    }

    /// Calls `addr` with a 30 s timeout, and meanwhile with a heartbeat's
    /// (100 ms), which must time out; the first call's outcome.
    async fn a_long_call_beside_a_silent_short_one(addr: &str) -> Result<Response, CallError> {
        let p = peers();
        let long = {
            let (p, addr) = (p.clone(), addr.to_string());
            tokio::spawn(async move { p.call(&addr, "g", 1, Request::App(vec![7]), Duration::from_secs(30)).await })
        };
        let e = p.call(addr, "g", 1, Request::App(vec![1]), Duration::from_millis(100)).await.unwrap_err();
        assert!(matches!(e, CallError::Timeout { .. }), "{e:?}");
        long.await.unwrap()
    }

    #[tokio::test]
    async fn a_peer_slower_than_the_silence_limit_keeps_its_connection() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let slow = Arc::new(Answering { delay: SILENT_AFTER * 3, answer: |b| b });
        let _server = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            let peer = crate::transport::PeerId::Unverified;
            crate::transport::serve_stream(Box::new(s), peer, slow, crate::transport::MAX_FRAME).await;
        });
        // The short call's silence has the connection probed, and the
        // peer's transport answers the probe.
        match a_long_call_beside_a_silent_short_one(&addr).await {
            Ok(Response::App(b)) => assert_eq!(b, vec![7]),
            other => panic!("the slow call lost its connection: {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_connection_on_which_nothing_comes_back_is_dropped() {
        let addr = a_peer_that_never_answers().await;
        let began = tokio::time::Instant::now();
        match a_long_call_beside_a_silent_short_one(&addr).await {
            Err(CallError::Unreachable { .. }) => {}
            other => panic!("expected the dead connection dropped, got {other:?}"),
        }
        assert!(began.elapsed() < SILENT_AFTER * 5, "took {:?}", began.elapsed());
    }

    /// A patient call outlasts its slices while the peer's transport
    /// answers probes, and fails soon after the peer stops answering.
    #[tokio::test]
    async fn a_patient_call_waits_for_a_slow_peer_and_not_for_a_dead_one() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let slow = Arc::new(Answering { delay: Duration::from_millis(1_500), answer: |b| b });
        let _server = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            let peer = crate::transport::PeerId::Unverified;
            crate::transport::serve_stream(Box::new(s), peer, slow, crate::transport::MAX_FRAME).await;
        });
        let wait = (Duration::from_millis(200), Duration::from_secs(30));
        match peers().call_patiently(&addr, "g", 1, Request::App(vec![9]), wait).await {
            Ok(Response::App(b)) => assert_eq!(b, vec![9]),
            other => panic!("the slow peer's answer was not waited for: {other:?}"),
        }
        let dead = a_peer_that_never_answers().await;
        let began = tokio::time::Instant::now();
        match peers().call_patiently(&dead, "g", 1, Request::App(vec![1]), wait).await {
            Err(CallError::Unreachable { .. }) => {}
            other => panic!("expected the dead peer given up on, got {other:?}"),
        }
        assert!(began.elapsed() < SILENT_AFTER * 3, "took {:?}", began.elapsed());
    }

    #[tokio::test]
    async fn a_call_without_an_answer_in_time_may_have_been_acted_on() {
        let addr = a_peer_that_never_answers().await;
        let e = peers().call(&addr, "g", 1, Request::App(vec![1]), Duration::from_millis(200)).await.unwrap_err();
        assert!(matches!(e, CallError::Timeout { .. }), "{e:?}");
        assert!(!e.not_acted_on());
    }
}
