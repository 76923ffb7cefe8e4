//! A node's RaftHost over a real socket: frames for groups it does not host,
//! stamped with an older epoch than its placement, or snapshot pieces out of
//! order, fail closed; a group bootstrapped on one node commits and applies
//! writes; a replica that leaves is remembered as left.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::kv_machine::{KvMachine, KvSpec};
use crate::kv_proposer::{KvProposer, MAX_BATCH_BYTES};
use crate::transport::{serve, CallError, Dispatch, PeerId, Request, TcpConnector, WireError};
use crate::{RaftHost, RaftTuning, Storage};
use openraft::async_runtime::WatchReceiver;
use openraft::BasicNode;
use tidal_core::kv::{ReadOp, Reply, WriteOp};

fn snapshot_piece(offset: u64, data: &[u8], done: bool) -> Request {
    Request::Snapshot { vote: openraft::Vote::new(1, 2), meta: Default::default(), offset, data: data.to_vec(), done }
}

fn vote() -> Request {
    Request::Vote(openraft::raft::VoteRequest::new(openraft::Vote::new(1, 2), None))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_fail_closed_and_a_group_commits() {
    let storage = Storage::in_memory().unwrap();
    let host = RaftHost::new(1, storage.clone(), Arc::new(TcpConnector), &RaftTuning::default()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let dispatch: Arc<dyn Dispatch> = host.clone();
    tokio::spawn(serve(listener, dispatch, stop_rx));

    let machine = Arc::new(KvMachine::new("default:0", &KvSpec::whole(1024)));
    let g = host.start_group("default:0", 5, machine.clone()).await.unwrap();

    // A peer (here: this node calling itself over TCP) with wrong frames.
    let peers = host.peers().clone();
    let t = Duration::from_secs(5);
    match peers.call(&addr, "default:9", 5, vote(), t).await {
        Err(CallError::Remote(WireError::UnknownGroup { node: 1, group })) => assert_eq!(group, "default:9"),
        other => panic!("expected UnknownGroup, got {other:?}"),
    }
    match peers.call(&addr, "default:0", 4, vote(), t).await {
        Err(CallError::Remote(WireError::StaleEpoch { got: 4, current: 5, .. })) => {}
        other => panic!("expected StaleEpoch, got {other:?}"),
    }
    match peers.call(&addr, "default:0", 0, Request::App(vec![1]), t).await {
        Err(CallError::Remote(WireError::NoHandler)) => {}
        other => panic!("expected NoHandler, got {other:?}"),
    }
    // Snapshot pieces must continue a transfer exactly where it stands.
    match peers.call(&addr, "default:0", 5, snapshot_piece(3, b"abc", false), t).await {
        Err(CallError::Remote(WireError::Raft(e))) => assert!(e.contains("no transfer under way"), "{e}"),
        other => panic!("expected a refused piece, got {other:?}"),
    }
    // A piece that is not one this node can read is refused, and ends the transfer.
    match peers.call(&addr, "default:0", 5, snapshot_piece(0, b"abc", false), t).await {
        Err(CallError::Remote(WireError::Raft(e))) => assert!(e.contains("not staged"), "{e}"),
        other => panic!("expected a refused piece, got {other:?}"),
    }
    assert!(matches!(
        peers.call(&addr, "default:0", 5, snapshot_piece(0, b"", false), t).await,
        Ok(crate::transport::Response::Snapshot(None))
    ));
    match peers.call(&addr, "default:0", 5, snapshot_piece(5, b"def", true), t).await {
        Err(CallError::Remote(WireError::Raft(e))) => assert!(e.contains("does not continue"), "{e}"),
        other => panic!("expected a refused piece, got {other:?}"),
    }

    // A peer whose certificate names node 3 may not send what node 2 says:
    // a vote, a snapshot piece, anything that claims a sender.
    let node3 = PeerId::Node(3);
    for body in [vote(), snapshot_piece(0, b"", false)] {
        match host.dispatch(node3, "default:0".into(), 5, body).await {
            Err(WireError::Forbidden(e)) => assert!(e.contains("claims node 2"), "{e}"),
            other => panic!("expected Forbidden, got {other:?}"),
        }
    }
    // Node 2 itself, or an unverified peer (an --insecure node), may.
    for from in [PeerId::Node(2), PeerId::Unverified] {
        assert!(matches!(
            host.dispatch(from, "default:0".into(), 5, snapshot_piece(0, b"", false)).await,
            Ok(crate::transport::Response::Snapshot(None))
        ));
    }

    // One-member group: bootstrap, write, read back.
    host.initialize("default:0", BTreeMap::from([(1, BasicNode { addr: addr.clone() })])).await.unwrap();
    g.raft.wait(Some(Duration::from_secs(10))).current_leader(1, "leader").await.unwrap();
    let op = WriteOp::set("k", "v");
    let proposer = KvProposer::spawn(g.raft.clone(), || 1, MAX_BATCH_BYTES);
    assert_eq!(proposer.propose(op.clone()).await.unwrap(), Ok(Reply::Ok));
    // Concurrent writes share entries: fewer entries than writes.
    let before = g.raft.metrics().borrow_watched().last_log_index.unwrap();
    let writes: Vec<_> = (0..200)
        .map(|i| {
            let p = proposer.clone();
            let op = WriteOp::IncrBy { key: b"n".to_vec(), delta: i };
            tokio::spawn(async move { p.propose(op).await })
        })
        .collect();
    let mut sum = 0;
    for w in writes {
        assert!(matches!(w.await.unwrap().unwrap(), Ok(Reply::Int(_))));
    }
    for i in 0..200 {
        sum += i;
    }
    let got = machine.read(&storage, &ReadOp::Get { key: b"n".to_vec() }, 2).unwrap();
    assert_eq!(got, Ok(Reply::Bulk(sum.to_string().into_bytes())));
    let entries = g.raft.metrics().borrow_watched().last_log_index.unwrap() - before;
    assert!(entries < 200, "200 concurrent writes took {entries} entries");
    let got = machine.read(&storage, &ReadOp::Get { key: b"k".to_vec() }, 2).unwrap();
    assert_eq!(got, Ok(Reply::Bulk(b"v".to_vec())));
    // The group is recorded for restarts, with its epoch.
    assert_eq!(storage.hosted_groups().unwrap(), vec![("default:0".to_string(), 5)]);

    // A replica that leaves is gone for restarts, and remembered as left
    // until the group starts here again. Its data goes in the background;
    // meanwhile the group cannot start here again.
    assert!(!host.left("default:0").unwrap());
    g.state.flush(false).await.unwrap();
    let (entries, rows) = stored_rows(&storage, "default:0");
    assert!(entries > 0 && rows > 0, "nothing stored to delete: {entries} entries, {rows} rows");
    host.leave_group("default:0").await.unwrap();
    assert!(host.left("default:0").unwrap() && storage.hosted_groups().unwrap().is_empty());
    let again = Arc::new(KvMachine::new("default:0", &KvSpec::whole(1024)));
    if host.dropping("default:0") {
        let refused = host.start_group("default:0", 6, again.clone()).await;
        assert!(matches!(refused, Err(crate::HostError::Dropping(_))), "started while its data was being deleted");
    }
    dropped(&host, "default:0").await;
    assert!(host.left("default:0").unwrap(), "the mark that it left outlives the purge");
    assert_eq!(stored_rows(&storage, "default:0"), (0, 0), "the log and the rows are gone");
    host.start_group("default:0", 6, again).await.unwrap();
    assert!(!host.left("default:0").unwrap());
    host.remove_group("default:0").await.unwrap();
    dropped(&host, "default:0").await;
    assert!(!host.left("default:0").unwrap(), "a plain removal leaves no mark");
    assert!(host.unfinished_drops().unwrap().is_empty());

    // A drop that a restart cut short: marked, with log entries left.
    let leave_behind = |txn: &redb::WriteTransaction| -> Result<(), redb::Error> {
        let mut log = txn.open_table(crate::storage::LOG)?;
        for i in 0..20_000u64 {
            log.insert(("default:9", i), [9u8; 200].as_slice())?;
        }
        let mut meta = txn.open_table(crate::storage::META)?;
        meta.insert(("default:9", "dropping"), [1u8].as_slice())?;
        meta.insert(("default:9", "left"), [1u8].as_slice())?;
        Ok(())
    };
    storage.log().writer().call(true, move |txn| leave_behind(txn).map_err(|e| e.to_string())).await.unwrap();
    assert_eq!(host.unfinished_drops().unwrap(), vec!["default:9".to_string()]);
    // Nothing of the name starts on what is left.
    assert!(host.dropping("default:9"));
    let fresh = Arc::new(KvMachine::new("default:9", &KvSpec::whole(1024)));
    let refused = host.start_group("default:9", 1, fresh).await;
    assert!(matches!(refused, Err(crate::HostError::Dropping(_))), "started on a half-deleted replica");
    host.finish_drop("default:9", None).await.unwrap();
    assert!(!host.dropping("default:9"));
    assert_eq!(stored_rows(&storage, "default:9"), (0, 0));
    assert!(host.unfinished_drops().unwrap().is_empty() && host.left("default:9").unwrap());
    host.shutdown().await;
}

/// Wait (at most 10 s) until `group`'s data is deleted.
async fn dropped(host: &RaftHost, group: &str) {
    for _ in 0..1000 {
        if !host.dropping(group) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{group} is still being deleted after 10 s");
}

/// The log entries and the key rows `storage` holds for `group`.
fn stored_rows(storage: &Storage, group: &str) -> (usize, usize) {
    use redb::ReadableTableMetadata;
    let txn = storage.log().read().unwrap();
    let log = txn.open_table(crate::storage::LOG).unwrap();
    let entries = log.range((group, 0)..=(group, u64::MAX)).unwrap().count();
    let txn = storage.state().read().unwrap();
    let name = format!("kvs/{group}");
    let def: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new(&name);
    let rows = match txn.open_table(def) {
        Ok(t) => t.len().unwrap() as usize,
        Err(_) => 0,
    };
    (entries, rows)
}
