//! openraft's network traits over the shared peer transport: one
//! [`GroupNetwork`] per group, all sending through the same [`Peers`].

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::errors::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{Backoff, RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest, TransferLeaderResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, OptionalSend};

use super::frame::{Request, Response, WireError};
use super::peers::{CallError, Peers};
use crate::snapshot::SnapshotPieces;
use crate::types::{Snapshot, SnapshotData, TypeConfig, Vote};

/// Snapshot piece size when openraft's configuration names none.
const SNAPSHOT_CHUNK: usize = 1 << 20;

/// Payload bytes (entry bodies and snapshot pieces) this node has sent to
/// each peer of one group and had accepted, while it led the group: how
/// far a learner's copy has come, in bytes. Each peer's client holds its
/// own counter, so counting costs an append no lock.
#[derive(Default)]
pub struct SentBytes(Mutex<BTreeMap<u64, Arc<AtomicU64>>>);

impl SentBytes {
    /// The counter of what is sent to `node`.
    fn counter(&self, node: u64) -> Arc<AtomicU64> {
        self.0.lock().expect("sent lock").entry(node).or_default().clone()
    }

    /// Bytes sent to `node` so far.
    pub fn to(&self, node: u64) -> u64 {
        self.0.lock().expect("sent lock").get(&node).map_or(0, |c| c.load(Ordering::Relaxed))
    }
}

/// Bytes per piece of a copy limited to `rate` bytes a second (0: no
/// limit, `max`): a quarter of a second's worth, between 256 KiB and `max`
/// (at least 256 KiB), so that the pieces go out evenly. Slot moves and
/// snapshots cut their copies alike.
pub fn paced_piece_bytes(rate: u64, max: u64) -> u64 {
    match rate {
        0 => max,
        rate => (rate / 4).clamp(256 << 10, max.max(256 << 10)),
    }
}

/// Paces the snapshot pieces a node sends, to every peer of every group,
/// to a rate in bytes a second (`--move-rate-mb`): a replica copied to
/// another node, for a move or to heal a lost one, shares the disks and
/// the links with the clients. Each piece takes its turn before it goes.
#[derive(Debug, Default)]
pub struct SnapshotPacer {
    /// Bytes a second; 0: no limit.
    rate: u64,
    /// When the pieces already let through will have taken their share.
    free_at: Mutex<Option<tokio::time::Instant>>,
}

impl SnapshotPacer {
    pub fn new(rate: u64) -> Arc<Self> {
        Arc::new(Self { rate, free_at: Mutex::new(None) })
    }

    /// Waits until a piece of `bytes` may go.
    async fn turn(&self, bytes: u64) {
        if self.rate == 0 || bytes == 0 {
            return;
        }
        let cost = Duration::from_secs_f64(bytes as f64 / self.rate as f64);
        let start = {
            let mut free = self.free_at.lock().expect("pacer lock");
            let now = tokio::time::Instant::now();
            let start = free.map_or(now, |t| t.max(now));
            *free = Some(start + cost);
            start
        };
        tokio::time::sleep_until(start).await;
    }
}

/// Network factory of one group; frames carry its name and placement epoch.
#[derive(Clone)]
pub struct GroupNetwork {
    group: Arc<str>,
    epoch: u64,
    peers: Arc<Peers>,
    sent: Arc<SentBytes>,
    pacer: Arc<SnapshotPacer>,
}

impl GroupNetwork {
    pub fn new(group: &str, epoch: u64, peers: Arc<Peers>, sent: Arc<SentBytes>, pacer: Arc<SnapshotPacer>) -> Self {
        Self { group: group.into(), epoch, peers, sent, pacer }
    }
}

pub struct GroupClient {
    addr: String,
    /// Bytes sent to this peer and accepted.
    sent: Arc<AtomicU64>,
    net: GroupNetwork,
}

impl RaftNetworkFactory<TypeConfig> for GroupNetwork {
    type Network = GroupClient;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> GroupClient {
        GroupClient { addr: node.addr.clone(), sent: self.sent.counter(target), net: self.clone() }
    }
}

type RpcErr = RPCError<TypeConfig>;

fn rpc_err(e: CallError) -> RpcErr {
    match e {
        CallError::Timeout { .. } => RPCError::Network(NetworkError::new(&e)),
        // The peer may not have created the group yet: back off and retry.
        // A frame too long to send will not shrink; back off too.
        CallError::Remote(WireError::UnknownGroup { .. })
        | CallError::Unreachable { .. }
        | CallError::NotSent { .. }
        | CallError::Remote(_)
        | CallError::TooLarge { .. } => RPCError::Unreachable(Unreachable::new(&e)),
    }
}

fn unexpected(r: Response) -> RpcErr {
    let e = CallError::Remote(WireError::Malformed(format!("unexpected response {r:?}")));
    RPCError::Network(NetworkError::new(&e))
}

/// How long an append may take. openraft offers the heartbeat interval,
/// which an empty append (a heartbeat) must meet; one carrying entries
/// also waits for the follower to write and fsync them, which for a large
/// payload (a move's rows, big values) takes longer, and timing it out
/// would only send it again. Not a limit on the stream (openraft does not
/// enforce one there), only on noticing a follower that stopped answering.
fn append_ttl(rpc: &AppendEntriesRequest<TypeConfig>, bytes: u64, offered: Duration) -> Duration {
    if rpc.entries.is_empty() {
        return offered;
    }
    transfer_ttl(offered, bytes)
}

/// How long an answer that waits on the peer writing `bytes` may take:
/// 10 s, plus the bytes at 16 MiB/s, and never less than `offered`. A
/// snapshot piece waits on its staging; the last piece on the install of
/// everything staged (one durable commit). The peer's storage writer also
/// runs other groups' work and its checkpoints, which under load stall it
/// for seconds at a time. Timing such an answer out saves nothing: the
/// append is sent again, the snapshot starts over from its first piece, and
/// the same work is queued behind the same stall. A peer that goes away is
/// noticed sooner anyway (its connection closes, and the answers pending on
/// it fail at once); this bounds only a peer that hangs.
fn transfer_ttl(offered: Duration, bytes: u64) -> Duration {
    offered.max(STORAGE_PATIENCE + Duration::from_secs_f64(bytes as f64 / f64::from(16u32 << 20)))
}

/// The least time an answer that waits on the peer's storage is given.
const STORAGE_PATIENCE: Duration = Duration::from_secs(10);

type Pieces = Box<dyn SnapshotPieces>;

/// Read the next piece off the runtime (the reader walks a table); the
/// reader comes back with it. `None` once the snapshot has been read.
fn read_piece(
    mut pieces: Pieces,
    max: usize,
) -> impl Future<Output = Result<(Pieces, Option<Vec<u8>>), StreamingError<TypeConfig>>> {
    let job = crate::runtime::blocking(move || {
        let r = pieces.next_piece(max);
        (pieces, r)
    });
    async move {
        match job.await {
            Ok((pieces, Ok(piece))) => Ok((pieces, piece)),
            Ok((_, Err(e))) => Err(read_failed(e)),
            Err(e) => Err(read_failed(e)),
        }
    }
}

/// A snapshot that cannot be read here: reported as a network failure, so
/// openraft retries the transfer (with a snapshot read anew) after a pause.
fn read_failed(e: impl std::fmt::Display) -> StreamingError<TypeConfig> {
    tracing::warn!(error = %e, "reading a snapshot to send failed");
    StreamingError::Network(NetworkError::new(&std::io::Error::other(format!("reading the snapshot: {e}"))))
}

/// Entry bytes one append frame carries at most (a single larger entry
/// goes alone); well under the transport's frame limit.
const APPEND_BYTES: usize = 16 << 20;

/// Frame bytes an append's entries leave for what goes around them.
const APPEND_ROOM: usize = 1 << 20;

/// `rpc` as consecutive appends of at most `max` entry bytes each (at
/// least one entry each), every one continuing from the last entry of the
/// one before, each with its entry bytes. openraft's follower commits only
/// entries it has received from the leader, so each part may carry the
/// leader's commit index.
fn split_append(rpc: AppendEntriesRequest<TypeConfig>, max: usize) -> Vec<(AppendEntriesRequest<TypeConfig>, usize)> {
    let total = payload_bytes(&rpc);
    if total <= max {
        return vec![(rpc, total)];
    }
    let AppendEntriesRequest { vote, prev_log_id, entries, leader_commit } = rpc;
    let mut parts = Vec::new();
    let mut prev = prev_log_id;
    let mut part = Vec::new();
    let mut bytes = 0;
    for e in entries {
        let n = entry_bytes(&e);
        if !part.is_empty() && bytes + n > max {
            let full = std::mem::take(&mut part);
            let next_prev = full.last().map(|e: &crate::types::Entry| e.log_id);
            parts.push((AppendEntriesRequest { vote, prev_log_id: prev, entries: full, leader_commit }, bytes));
            prev = next_prev;
            bytes = 0;
        }
        bytes += n;
        part.push(e);
    }
    parts.push((AppendEntriesRequest { vote, prev_log_id: prev, entries: part, leader_commit }, bytes));
    parts
}

fn entry_bytes(e: &crate::types::Entry) -> usize {
    match &e.payload {
        openraft::EntryPayload::Normal(p) => p.body.len(),
        _ => 0,
    }
}

/// Bytes of the entry bodies an append carries.
fn payload_bytes(rpc: &AppendEntriesRequest<TypeConfig>) -> usize {
    rpc.entries.iter().map(entry_bytes).sum()
}

impl GroupClient {
    async fn call(&self, body: Request, ttl: Duration) -> Result<Response, CallError> {
        self.net.peers.call(&self.addr, &self.net.group, self.net.epoch, body, ttl).await
    }
}

impl RaftNetworkV2<TypeConfig> for GroupClient {
    type SnapshotData = SnapshotData;

    /// An append carrying more entry bytes than one frame should is sent
    /// as several, in order, each continuing from the last entry of the
    /// one before: a follower that comes back far behind gets up to
    /// openraft's 300 entries at once, which for large values or a move's
    /// rows would exceed the frame limit every time it is tried.
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RpcErr> {
        // Within the frame limit, with room for the frame around the entries.
        let most = APPEND_BYTES.min(self.net.peers.max_frame().saturating_sub(APPEND_ROOM)).max(1);
        let mut parts = split_append(rpc, most).into_iter().peekable();
        while let Some((part, bytes)) = parts.next() {
            let bytes = bytes as u64;
            let ttl = append_ttl(&part, bytes, option.hard_ttl());
            let reply = match self.call(Request::Append(part), ttl).await.map_err(rpc_err)? {
                Response::Append(r) => r,
                other => return Err(unexpected(other)),
            };
            let accepted = matches!(reply, AppendEntriesResponse::Success);
            if accepted {
                self.sent.fetch_add(bytes, Ordering::Relaxed);
            }
            if !accepted || parts.peek().is_none() {
                return Ok(reply);
            }
        }
        unreachable!("an append splits into at least one part")
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RpcErr> {
        match self.call(Request::Vote(rpc), option.hard_ttl()).await.map_err(rpc_err)? {
            Response::Vote(r) => Ok(r),
            other => Err(unexpected(other)),
        }
    }

    /// Streams the snapshot out of the state file: each piece is read
    /// while the one before it travels, and goes in its own frame with its
    /// own deadline, so a large snapshot is never whole in memory, never
    /// hits the frame limit and never holds the connection for one long
    /// write. A last, empty piece marks the end; the receiver installs on it.
    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let chunk = option.snapshot_chunk_size().unwrap_or(SNAPSHOT_CHUNK).max(1);
        let meta = snapshot.meta;
        let Some(mut pieces) = snapshot.snapshot.into_pieces() else {
            return Err(read_failed("a staged snapshot cannot be sent on"));
        };
        tokio::pin!(cancel);
        let mut offset = 0u64;
        let mut next = Some(read_piece(pieces, chunk));
        while let Some(reading) = next.take() {
            let (back, piece) = tokio::select! {
                biased;
                closed = &mut cancel => return Err(StreamingError::Closed(closed)),
                r = reading => r?,
            };
            pieces = back;
            let done = piece.is_none();
            let data = piece.unwrap_or_default();
            let len = data.len() as u64;
            tokio::select! {
                biased;
                closed = &mut cancel => return Err(StreamingError::Closed(closed)),
                () = self.net.pacer.turn(len) => {}
            }
            let ttl = transfer_ttl(option.hard_ttl(), if done { offset } else { len });
            let send = self.call(Request::Snapshot { vote, meta: meta.clone(), offset, data, done }, ttl);
            // Read the following piece while this one travels.
            if !done {
                next = Some(read_piece(pieces, chunk));
            }
            let reply = tokio::select! {
                biased;
                closed = &mut cancel => return Err(StreamingError::Closed(closed)),
                r = send => r.map_err(|e| {
                    tracing::warn!(
                        group = %self.net.group, peer = %self.addr, offset, error = %e,
                        "snapshot transfer cut short; it starts over"
                    );
                    rpc_err(e)
                })?,
            };
            match reply {
                Response::Snapshot(Some(r)) if done => return Ok(r),
                Response::Snapshot(None) if !done => {
                    offset += len;
                    self.sent.fetch_add(len, Ordering::Relaxed);
                }
                other => return Err(unexpected(other).into()),
            }
        }
        unreachable!("the loop ends on the last piece's answer")
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RpcErr> {
        match self.call(Request::TransferLeader(req), option.hard_ttl()).await.map_err(rpc_err)? {
            Response::TransferLeader(r) => Ok(r),
            other => Err(unexpected(other)),
        }
    }

    fn backoff(&self) -> Option<Backoff> {
        Some(Backoff::new(std::iter::repeat(Duration::from_millis(200))))
    }
}

#[cfg(test)]
mod tests {
    use openraft::EntryPayload;

    use super::*;
    use crate::types::{CommittedLeaderId, Entry, LogId, Proposal};

    fn log_id(index: u64) -> LogId {
        LogId { leader_id: CommittedLeaderId { term: 2, node_id: 1 }, index }
    }

    fn entry(index: u64, bytes: usize) -> Entry {
        Entry { log_id: log_id(index), payload: EntryPayload::Normal(Proposal { now_ms: 0, body: vec![7; bytes] }) }
    }

    #[test]
    fn a_large_append_is_cut_into_parts_that_continue_each_other() {
        let sizes = [10, 10, 10, 25, 5, 0];
        let rpc = AppendEntriesRequest {
            vote: openraft::Vote::new(2, 1),
            prev_log_id: Some(log_id(4)),
            entries: sizes.iter().enumerate().map(|(i, n)| entry(5 + i as u64, *n)).collect(),
            leader_commit: Some(log_id(9)),
        };
        let parts = split_append(rpc, 20);
        let shape: Vec<Vec<u64>> =
            parts.iter().map(|(p, _)| p.entries.iter().map(|e| e.log_id.index).collect()).collect();
        // 10+10 fit; the third 10 starts a part; 25 goes alone; 5 and the empty one share.
        assert_eq!(shape, vec![vec![5, 6], vec![7], vec![8], vec![9, 10]]);
        let bytes: Vec<usize> = parts.iter().map(|(_, b)| *b).collect();
        assert_eq!(bytes, vec![20, 10, 25, 5]);
        let prevs: Vec<Option<u64>> = parts.iter().map(|(p, _)| p.prev_log_id.map(|l| l.index)).collect();
        assert_eq!(prevs, vec![Some(4), Some(6), Some(7), Some(8)]);
        assert!(parts.iter().all(|(p, _)| p.leader_commit == Some(log_id(9))));
        // A small append stays whole.
        let small = AppendEntriesRequest {
            vote: openraft::Vote::new(2, 1),
            prev_log_id: None,
            entries: vec![entry(1, 5)],
            leader_commit: None,
        };
        assert_eq!(split_append(small, 20).len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn snapshot_pieces_keep_to_the_rate_across_transfers() {
        let start = tokio::time::Instant::now();
        let pacer = SnapshotPacer::new(1 << 20);
        // Two transfers at once, four 512 KiB pieces in all: 2 MiB at
        // 1 MiB/s; the last piece goes 1.5 s in (its own share after it).
        let send = |pacer: Arc<SnapshotPacer>| async move {
            for _ in 0..2 {
                pacer.turn(512 << 10).await;
            }
            tokio::time::Instant::now() - start
        };
        let (a, b) = tokio::join!(send(pacer.clone()), send(pacer.clone()));
        assert_eq!(a.max(b), Duration::from_millis(1500));
        // No limit: nothing waits.
        let free = SnapshotPacer::new(0);
        let before = tokio::time::Instant::now();
        for _ in 0..10 {
            free.turn(64 << 20).await;
        }
        assert_eq!(tokio::time::Instant::now(), before);
    }
}
