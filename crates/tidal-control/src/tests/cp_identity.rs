//! A control-plane request that speaks for a node (a registration, a
//! watch carrying a report) is refused unless the peer's certificate names
//! that node; requests that speak for nobody, and peers of an `--insecure`
//! node, are not checked.

use std::sync::Arc;

use crate::api::{CpRequest, CpResponse};
use crate::{ControlPlane, CpCommand, CpReply};
use tidal_core::cluster::{NodeInfo, NodeState, Registration};
use tidal_raft::transport::{PeerId, TcpConnector};
use tidal_raft::{RaftHost, RaftTuning, Storage};

fn registration(id: u64) -> Registration {
    let info = NodeInfo {
        id,
        peer_addr: "127.0.0.1:1".into(),
        client_addr: "127.0.0.1:2".into(),
        http_addr: "127.0.0.1:3".into(),
        zone: "local".into(),
        state: NodeState::Active,
    };
    Registration { info, instance: 1, replace: false }
}

fn refused(r: CpResponse) -> String {
    match r {
        CpResponse::Reply(CpReply::Refused(why)) => why,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_request_for_another_node_is_refused() {
    let storage = Storage::in_memory().unwrap();
    let host = RaftHost::new(1, storage, Arc::new(TcpConnector), &RaftTuning::default()).unwrap();
    // No `_cp` replica here: whatever is not refused is answered NotLeader.
    let cp = ControlPlane::new(host, None, Default::default(), Arc::new(|| 0));
    let node2 = PeerId::Node(2);

    let why = refused(cp.handle(node2, CpRequest::Join(registration(5))).await);
    assert!(why.contains("node 5") && why.contains("Node(2)"), "{why}");
    refused(cp.handle(node2, CpRequest::Propose(CpCommand::Register(registration(5)))).await);
    refused(cp.handle(node2, CpRequest::Propose(CpCommand::RegisterNode(registration(5).info))).await);
    let watch = CpRequest::Watch { after: 0, wait_ms: 0, node: 5, report: Default::default() };
    refused(cp.handle(node2, watch).await);

    // Its own registration, a read, and any other proposal go through
    // (here: to "not the leader").
    let not_refused = |r: CpResponse| !matches!(r, CpResponse::Reply(CpReply::Refused(_)));
    assert!(not_refused(cp.handle(node2, CpRequest::Propose(CpCommand::Register(registration(2)))).await));
    assert!(not_refused(cp.handle(node2, CpRequest::Read).await));
    assert!(not_refused(cp.handle(PeerId::Unverified, CpRequest::Propose(CpCommand::Register(registration(5)))).await));
}
