//! Wire frames of the peer transport.
//!
//! Every frame is a 4-byte big-endian length followed by a postcard-encoded
//! [`Frame`]. Requests name the group they are for and the routing epoch the
//! sender used; responses echo the request id. Many frames, of many groups,
//! travel together in one write.

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::types::{SnapshotMeta, TypeConfig, Vote};

/// Largest frame accepted; a longer declared length closes the connection.
pub const MAX_FRAME: usize = 64 * 1024 * 1024;

#[derive(Debug, Serialize, Deserialize)]
pub enum Frame {
    Request { id: u64, group: String, epoch: u64, body: Request },
    Response { id: u64, body: Result<Response, WireError> },
}

#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    Append(openraft::raft::AppendEntriesRequest<TypeConfig>),
    Vote(openraft::raft::VoteRequest<TypeConfig>),
    /// One piece of a snapshot, sent in order from offset 0; the receiver
    /// installs it once the piece marked `done` arrives.
    Snapshot {
        vote: Vote,
        meta: SnapshotMeta,
        offset: u64,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
        done: bool,
    },
    /// A request for the layer above (forwarded client commands, control
    /// plane calls); opaque to the transport.
    App(#[serde(with = "serde_bytes")] Vec<u8>),
    /// The leader hands leadership to the receiver, which starts an
    /// election at once instead of waiting for a timeout.
    TransferLeader(openraft::raft::TransferLeaderRequest<TypeConfig>),
}

#[derive(Debug, Serialize, Deserialize)]
pub enum Response {
    Append(openraft::raft::AppendEntriesResponse<TypeConfig>),
    Vote(openraft::raft::VoteResponse<TypeConfig>),
    /// A snapshot piece was taken; the last piece's answer carries the
    /// receiver's vote.
    Snapshot(Option<openraft::raft::SnapshotResponse<TypeConfig>>),
    App(#[serde(with = "serde_bytes")] Vec<u8>),
    TransferLeader(openraft::raft::TransferLeaderResponse<TypeConfig>),
}

/// Why a request was refused; the transport fails closed on all of these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum WireError {
    #[error("node {node} does not host group {group}")]
    UnknownGroup { node: u64, group: String },
    #[error("stale routing epoch {got} for group {group}: this node placed it at epoch {current}")]
    StaleEpoch { group: String, got: u64, current: u64 },
    #[error("raft: {0}")]
    Raft(String),
    #[error("malformed frame: {0}")]
    Malformed(String),
    #[error("no application handler on this node")]
    NoHandler,
}

pub fn encode_frame(frame: &Frame, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    let out2 = postcard::to_extend(frame, std::mem::take(out)).expect("in-memory serialization cannot fail");
    *out = out2;
    let len = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

/// Read one frame; `Ok(None)` on a clean end of stream.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R, buf: &mut Vec<u8>) -> std::io::Result<Option<Frame>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds the {MAX_FRAME}-byte limit"),
        ));
    }
    buf.resize(len, 0);
    r.read_exact(buf).await?;
    postcard::from_bytes(buf)
        .map(Some)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("malformed frame: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_back_to_back() {
        let mut buf = Vec::new();
        encode_frame(
            &Frame::Request { id: 1, group: "default:0".into(), epoch: 7, body: Request::App(vec![1, 2]) },
            &mut buf,
        );
        encode_frame(&Frame::Response { id: 1, body: Err(WireError::NoHandler) }, &mut buf);
        let mut r = &buf[..];
        let mut scratch = Vec::new();
        match read_frame(&mut r, &mut scratch).await.unwrap().unwrap() {
            Frame::Request { id, group, epoch, body: Request::App(b) } => {
                assert_eq!((id, group.as_str(), epoch, b), (1, "default:0", 7, vec![1, 2]));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            read_frame(&mut r, &mut scratch).await.unwrap(),
            Some(Frame::Response { id: 1, body: Err(WireError::NoHandler) })
        ));
        assert!(read_frame(&mut r, &mut scratch).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn oversized_and_garbage_frames_are_errors() {
        let mut r = &(u32::MAX.to_be_bytes())[..];
        assert!(read_frame(&mut r, &mut Vec::new()).await.is_err());
        let garbage = [0, 0, 0, 3, 0xff, 0xff, 0xff];
        let mut r = &garbage[..];
        assert!(read_frame(&mut r, &mut Vec::new()).await.is_err());
    }
}
