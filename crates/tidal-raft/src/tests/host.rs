//! A node's RaftHost over a real socket: frames for groups it does not host,
//! stamped with an older epoch than its placement, or snapshot pieces out of
//! order, fail closed; a group bootstrapped on one node commits and applies
//! writes; a replica that leaves is remembered as left.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::kv_machine::{KvMachine, KvSpec};
use crate::kv_proposer::KvProposer;
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
    let proposer = KvProposer::spawn(g.raft.clone(), || 1);
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
    // until the group starts here again.
    assert!(!host.left("default:0").unwrap());
    host.leave_group("default:0").await.unwrap();
    assert!(host.left("default:0").unwrap() && storage.hosted_groups().unwrap().is_empty());
    let again = Arc::new(KvMachine::new("default:0", &KvSpec::whole(1024)));
    host.start_group("default:0", 6, again).await.unwrap();
    assert!(!host.left("default:0").unwrap());
    host.remove_group("default:0").await.unwrap();
    assert!(!host.left("default:0").unwrap(), "a plain removal leaves no mark");
    host.shutdown().await;
}
