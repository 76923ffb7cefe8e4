//! openraft's network traits over the shared peer transport: one
//! [`GroupNetwork`] per group, all sending through the same [`Peers`].

use std::collections::HashMap;
use std::future::Future;
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
/// far a learner's copy has come, in bytes.
#[derive(Default)]
pub struct SentBytes(Mutex<HashMap<u64, u64>>);

impl SentBytes {
    fn add(&self, to: u64, bytes: u64) {
        *self.0.lock().expect("sent lock").entry(to).or_default() += bytes;
    }

    /// Bytes sent to `node` so far.
    pub fn to(&self, node: u64) -> u64 {
        self.0.lock().expect("sent lock").get(&node).copied().unwrap_or(0)
    }
}

/// Network factory of one group; frames carry its name and placement epoch.
#[derive(Clone)]
pub struct GroupNetwork {
    group: Arc<str>,
    epoch: u64,
    peers: Arc<Peers>,
    sent: Arc<SentBytes>,
}

impl GroupNetwork {
    pub fn new(group: &str, epoch: u64, peers: Arc<Peers>, sent: Arc<SentBytes>) -> Self {
        Self { group: group.into(), epoch, peers, sent }
    }
}

pub struct GroupClient {
    addr: String,
    target: u64,
    net: GroupNetwork,
}

impl RaftNetworkFactory<TypeConfig> for GroupNetwork {
    type Network = GroupClient;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> GroupClient {
        GroupClient { addr: node.addr.clone(), target, net: self.clone() }
    }
}

type RpcErr = RPCError<TypeConfig>;

fn rpc_err(e: CallError) -> RpcErr {
    match e {
        CallError::Timeout { .. } => RPCError::Network(NetworkError::new(&e)),
        // The peer may not have created the group yet: back off and retry.
        CallError::Remote(WireError::UnknownGroup { .. }) | CallError::Unreachable { .. } | CallError::Remote(_) => {
            RPCError::Unreachable(Unreachable::new(&e))
        }
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
fn append_ttl(rpc: &AppendEntriesRequest<TypeConfig>, offered: Duration) -> Duration {
    if rpc.entries.is_empty() {
        return offered;
    }
    let bytes = payload_bytes(rpc);
    // 1 s, plus the payload at 16 MiB/s.
    offered.max(Duration::from_secs(1) + Duration::from_secs_f64(bytes as f64 / f64::from(16u32 << 20)))
}

/// How long one snapshot piece may take: the follower writes each piece
/// to its state file, and installs the whole snapshot (one durable commit
/// of everything staged) on the last; `bytes` is what that answer waits on.
fn piece_ttl(offered: Duration, bytes: u64) -> Duration {
    // 1 s, plus the bytes at 16 MiB/s.
    offered.max(Duration::from_secs(1) + Duration::from_secs_f64(bytes as f64 / f64::from(16u32 << 20)))
}

type Pieces = Box<dyn SnapshotPieces>;

/// Read the next piece off the runtime (the reader walks a table); the
/// reader comes back with it. `None` once the snapshot has been read.
fn read_piece(
    mut pieces: Pieces,
    max: usize,
) -> impl Future<Output = Result<(Pieces, Option<Vec<u8>>), StreamingError<TypeConfig>>> {
    let job = tokio::task::spawn_blocking(move || {
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

/// Bytes of the entry bodies an append carries.
fn payload_bytes(rpc: &AppendEntriesRequest<TypeConfig>) -> usize {
    rpc.entries
        .iter()
        .map(|e| match &e.payload {
            openraft::EntryPayload::Normal(p) => p.body.len(),
            _ => 0,
        })
        .sum()
}

impl GroupClient {
    async fn call(&self, body: Request, ttl: Duration) -> Result<Response, CallError> {
        self.net.peers.call(&self.addr, &self.net.group, self.net.epoch, body, ttl).await
    }
}

impl RaftNetworkV2<TypeConfig> for GroupClient {
    type SnapshotData = SnapshotData;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RpcErr> {
        let ttl = append_ttl(&rpc, option.hard_ttl());
        let bytes = payload_bytes(&rpc) as u64;
        match self.call(Request::Append(rpc), ttl).await.map_err(rpc_err)? {
            Response::Append(r) => {
                if matches!(r, AppendEntriesResponse::Success) {
                    self.net.sent.add(self.target, bytes);
                }
                Ok(r)
            }
            other => Err(unexpected(other)),
        }
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
                closed = &mut cancel => return Err(StreamingError::Closed(closed)),
                r = reading => r?,
            };
            pieces = back;
            let done = piece.is_none();
            let data = piece.unwrap_or_default();
            let len = data.len() as u64;
            let ttl = piece_ttl(option.hard_ttl(), if done { offset } else { len });
            let send = self.call(Request::Snapshot { vote, meta: meta.clone(), offset, data, done }, ttl);
            // Read the following piece while this one travels.
            if !done {
                next = Some(read_piece(pieces, chunk));
            }
            let reply = tokio::select! {
                closed = &mut cancel => return Err(StreamingError::Closed(closed)),
                r = send => r.map_err(rpc_err)?,
            };
            match reply {
                Response::Snapshot(Some(r)) if done => return Ok(r),
                Response::Snapshot(None) if !done => {
                    offset += len;
                    self.net.sent.add(self.target, len);
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
