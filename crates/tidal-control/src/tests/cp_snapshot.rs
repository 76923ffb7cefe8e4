//! A `_cp` snapshot arriving from a peer: it is gathered in memory, so a
//! transfer that goes past one frame's worth of bytes is refused, as is a
//! piece that does not continue the transfer; a new transfer from offset
//! 0 starts over cleanly.

use std::sync::Arc;

use crate::cp_machine::MAX_CP_SNAPSHOT_BYTES;
use crate::CpMachine;
use tidal_core::ids::CP_GROUP;
use tidal_raft::transport::{Dispatch, Request, Response, TcpConnector, WireError};
use tidal_raft::types::{CommittedLeaderId, LogId, SnapshotMeta};
use tidal_raft::{RaftHost, RaftTuning, Storage};

fn meta(index: u64) -> SnapshotMeta {
    SnapshotMeta {
        last_log_id: Some(LogId { leader_id: CommittedLeaderId { term: 1, node_id: 2 }, index }),
        ..Default::default()
    }
}

fn piece(meta: SnapshotMeta, offset: u64, data: Vec<u8>) -> Request {
    Request::Snapshot { vote: openraft::Vote::new(1, 2), meta, offset, data, done: false }
}

async fn send(host: &Arc<RaftHost>, body: Request) -> Result<Response, WireError> {
    host.dispatch(tidal_raft::transport::PeerId::Unverified, CP_GROUP.to_string(), 1, body).await
}

fn refusal(r: Result<Response, WireError>) -> String {
    match r {
        Err(WireError::Raft(e)) => e,
        other => panic!("expected a refused piece, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cp_snapshot_is_refused_past_its_limit_or_out_of_order() {
    let storage = Storage::in_memory().unwrap();
    let host = RaftHost::new(1, storage.clone(), Arc::new(TcpConnector), &RaftTuning::default()).unwrap();
    host.start_group(CP_GROUP, 1, CpMachine::open(&storage).unwrap()).await.unwrap();

    assert!(matches!(send(&host, piece(meta(5), 0, vec![1; 1000])).await, Ok(Response::Snapshot(None))));
    // Another snapshot mid-stream, or a gap, ends the transfer.
    let e = refusal(send(&host, piece(meta(6), 1000, vec![2; 10])).await);
    assert!(e.contains("of the snapshot up to"), "{e}");
    let e = refusal(send(&host, piece(meta(5), 1000, vec![2; 10])).await);
    assert!(e.contains("no transfer under way"), "the refusal ended the transfer: {e}");

    // Offset 0 starts over; then a gap is refused.
    assert!(matches!(send(&host, piece(meta(6), 0, vec![1; 10])).await, Ok(Response::Snapshot(None))));
    let e = refusal(send(&host, piece(meta(6), 20, vec![2; 10])).await);
    assert!(e.contains("10 bytes have been received"), "{e}");

    // A transfer that would go past the limit is refused before it is staged.
    assert!(matches!(send(&host, piece(meta(7), 0, vec![1; 10])).await, Ok(Response::Snapshot(None))));
    let over = vec![0u8; MAX_CP_SNAPSHOT_BYTES as usize - 9];
    let e = refusal(send(&host, piece(meta(7), 10, over)).await);
    assert!(e.contains(&format!("past {MAX_CP_SNAPSHOT_BYTES} bytes")), "{e}");
}
