//! openraft's network traits over the shared peer transport: one
//! [`GroupNetwork`] per group, all sending through the same [`Peers`].

use std::sync::Arc;
use std::time::Duration;

use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, Unreachable};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::BasicNode;

use super::frame::{Request, Response, WireError};
use super::peers::{CallError, Peers};
use crate::types::TypeConfig;

/// Network factory of one group; frames carry its name and placement epoch.
#[derive(Clone)]
pub struct GroupNetwork {
    group: Arc<str>,
    epoch: u64,
    peers: Arc<Peers>,
}

impl GroupNetwork {
    pub fn new(group: &str, epoch: u64, peers: Arc<Peers>) -> Self {
        Self { group: group.into(), epoch, peers }
    }
}

pub struct GroupClient {
    addr: String,
    net: GroupNetwork,
}

impl RaftNetworkFactory<TypeConfig> for GroupNetwork {
    type Network = GroupClient;

    async fn new_client(&mut self, _target: u64, node: &BasicNode) -> GroupClient {
        GroupClient { addr: node.addr.clone(), net: self.clone() }
    }
}

type RpcErr<E = openraft::error::Infallible> = RPCError<u64, BasicNode, RaftError<u64, E>>;

fn rpc_err<E: std::error::Error>(e: CallError) -> RpcErr<E> {
    match e {
        CallError::Timeout { .. } => RPCError::Network(NetworkError::new(&e)),
        // The peer may not have created the group yet: back off and retry.
        CallError::Remote(WireError::UnknownGroup { .. }) | CallError::Unreachable { .. } | CallError::Remote(_) => {
            RPCError::Unreachable(Unreachable::new(&e))
        }
    }
}

fn unexpected<E: std::error::Error>(r: Response) -> RpcErr<E> {
    let e = CallError::Remote(WireError::Malformed(format!("unexpected response {r:?}")));
    RPCError::Network(NetworkError::new(&e))
}

impl GroupClient {
    async fn call(&self, body: Request, ttl: Duration) -> Result<Response, CallError> {
        self.net.peers.call(&self.addr, &self.net.group, self.net.epoch, body, ttl).await
    }
}

impl RaftNetwork<TypeConfig> for GroupClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RpcErr> {
        match self.call(Request::Append(rpc), option.hard_ttl()).await.map_err(rpc_err)? {
            Response::Append(r) => Ok(r),
            other => Err(unexpected(other)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<u64>, RpcErr<InstallSnapshotError>> {
        match self.call(Request::Snapshot(rpc), option.hard_ttl()).await.map_err(rpc_err)? {
            Response::Snapshot(r) => Ok(r),
            other => Err(unexpected(other)),
        }
    }

    async fn vote(&mut self, rpc: VoteRequest<u64>, option: RPCOption) -> Result<VoteResponse<u64>, RpcErr> {
        match self.call(Request::Vote(rpc), option.hard_ttl()).await.map_err(rpc_err)? {
            Response::Vote(r) => Ok(r),
            other => Err(unexpected(other)),
        }
    }

    fn backoff(&self) -> Backoff {
        Backoff::new(std::iter::repeat(Duration::from_millis(200)))
    }
}
