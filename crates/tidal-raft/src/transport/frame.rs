//! Wire frames of the peer transport.
//!
//! Every frame is a 4-byte big-endian length followed by a postcard-encoded
//! [`Frame`]. Requests name the group they are for and the routing epoch the
//! sender used; responses echo the request id. Many frames, of many groups,
//! travel together in one write.
//!
//! An application answer longer than a frame travels as pieces
//! ([`Response::AppPart`], then the [`Response::App`] that ends it, under
//! the request's id), up to [`MAX_ANSWER`] bytes in all; the caller joins
//! them. Everything else is one frame.
//!
//! Whatever a peer sends, reading a frame gives a frame or an error: a
//! declared length over [`MAX_FRAME`] is refused before anything is read,
//! the body's buffer grows only as its bytes arrive (a header alone cannot
//! make the reader reserve the length it declares), and decoding reads from
//! that buffer, so a length inside the frame that claims more than the
//! frame holds fails rather than allocating it.

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::types::{SnapshotMeta, TypeConfig, Vote};

/// Largest frame there can be, and the default limit; a node may be set to
/// accept less (`--max-frame-mb`). A longer declared length closes the
/// connection, and a sender refuses to send a longer one.
pub const MAX_FRAME: usize = 64 * 1024 * 1024;

/// Longest application answer a node sends another, in pieces of a frame
/// each: a Redis bulk string's own limit (`proto-max-bulk-len`).
pub const MAX_ANSWER: usize = 512 * 1024 * 1024;

/// Room a piece's frame leaves for everything but the piece's bytes: the
/// id, the tags and the length of the bytes.
const PIECE_OVERHEAD: usize = 64;

/// Most bytes the buffer of a frame body grows by before they arrive.
const READ_CHUNK: usize = 256 * 1024;

/// Capacity a connection's read buffer keeps between frames; a larger
/// frame's buffer is given back once it is decoded.
const KEEP_CAPACITY: usize = 1024 * 1024;

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
    /// A piece of an application answer longer than a frame: the caller
    /// keeps it, and the pieces after it, until the `App` that ends the
    /// answer arrives with the same id.
    AppPart(#[serde(with = "serde_bytes")] Vec<u8>),
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
    /// The peer's certificate does not allow what the frame asks: it
    /// claims to come from another node.
    #[error("refused: {0}")]
    Forbidden(String),
    /// An answer longer than any node passes on ([`MAX_ANSWER`]).
    #[error(
        "the answer is {bytes} bytes, more than the {limit} one node passes to another: read it in parts \
         (HSCAN, SSCAN, ZSCAN, LRANGE or ZRANGE by ranges, GETRANGE) or from the node that leads the key's PRG"
    )]
    AnswerTooLarge { bytes: usize, limit: usize },
}

/// A frame too long to send: the receiver would refuse it and close the
/// connection every group to that peer shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("frame of {bytes} bytes exceeds the {limit}-byte limit")]
pub struct FrameTooLarge {
    pub bytes: usize,
    pub limit: usize,
}

/// Append `frame`, with its length in front, to `out`. A frame longer than
/// `limit` (or [`MAX_FRAME`]) is not appended (`out` is left as it was).
pub fn encode_frame(frame: &Frame, out: &mut Vec<u8>, limit: usize) -> Result<(), FrameTooLarge> {
    let limit = limit.min(MAX_FRAME);
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    let out2 = postcard::to_extend(frame, std::mem::take(out)).expect("in-memory serialization cannot fail");
    *out = out2;
    let len = out.len() - start - 4;
    if len > limit {
        out.truncate(start);
        return Err(FrameTooLarge { bytes: len, limit });
    }
    out[start..start + 4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(())
}

/// The frames that answer request `id` with `body`, each encoded on its
/// own: one frame, or, for an application answer longer than `limit`, its
/// pieces (which the sender interleaves with other frames). Any other
/// answer too long for a frame, or an application answer longer than
/// [`MAX_ANSWER`], is answered with why it was not sent.
pub fn encode_response(id: u64, body: Result<Response, WireError>, limit: usize) -> Vec<Vec<u8>> {
    encode_response_within(id, body, limit, MAX_ANSWER)
}

/// [`encode_response`], with answers bounded by `max_answer`.
fn encode_response_within(id: u64, body: Result<Response, WireError>, limit: usize, max_answer: usize) -> Vec<Vec<u8>> {
    let one = |body| {
        let mut out = Vec::new();
        encode_frame(&Frame::Response { id, body }, &mut out, limit).map(|()| out)
    };
    let frame = Frame::Response { id, body };
    let mut out = Vec::new();
    let Err(e) = encode_frame(&frame, &mut out, limit) else { return vec![out] };
    let Frame::Response { body, .. } = frame else { unreachable!("a response was built above") };
    let body = match body {
        Ok(Response::App(bytes)) if bytes.len() <= max_answer => {
            let piece = (limit.min(MAX_FRAME).saturating_sub(PIECE_OVERHEAD)).max(1);
            let count = bytes.len().div_ceil(piece);
            return bytes
                .chunks(piece)
                .enumerate()
                .map(|(i, bytes)| {
                    let part =
                        if i + 1 < count { Response::AppPart(bytes.to_vec()) } else { Response::App(bytes.to_vec()) };
                    one(Ok(part)).expect("a piece fits a frame")
                })
                .collect();
        }
        Ok(Response::App(bytes)) => Err(WireError::AnswerTooLarge { bytes: bytes.len(), limit: max_answer }),
        // The caller hears why instead of losing the connection.
        _ => Err(WireError::Malformed(format!("response not sent: {e}"))),
    };
    vec![one(body).expect("a short error fits a frame")]
}

/// Why a frame body does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error(transparent)]
    Postcard(#[from] postcard::Error),
    /// The body holds more than one frame's encoding: it was not written
    /// by [`encode_frame`].
    #[error("{0} bytes after the end of the frame")]
    Trailing(usize),
}

/// Decode the body of one frame (what follows its length).
pub fn decode_frame(body: &[u8]) -> Result<Frame, FrameError> {
    // postcard reads from the slice: a length prefix (of bytes, a string or
    // a sequence) larger than what is left fails instead of allocating,
    // and serde reserves at most 1 MiB for a sequence before its elements
    // have actually been read.
    let (frame, rest) = postcard::take_from_bytes(body)?;
    if !rest.is_empty() {
        return Err(FrameError::Trailing(rest.len()));
    }
    Ok(frame)
}

fn invalid(msg: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg)
}

/// Read one frame of at most `limit` bytes; `Ok(None)` on a clean end of
/// stream. `buf` is scratch space, reused from frame to frame.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
    limit: usize,
) -> std::io::Result<Option<Frame>> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < len.len() {
        match r.read(&mut len[got..]).await? {
            0 if got == 0 => return Ok(None),
            0 => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "stream ended inside a frame header",
                ))
            }
            n => got += n,
        }
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > limit {
        return Err(invalid(format!("frame of {len} bytes exceeds this node's {limit}-byte limit")));
    }
    buf.clear();
    let mut body = (&mut *r).take(len as u64);
    while buf.len() < len {
        buf.reserve((len - buf.len()).min(READ_CHUNK));
        if body.read_buf(buf).await? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("stream ended {} bytes into a frame of {len}", buf.len()),
            ));
        }
    }
    let frame = decode_frame(buf).map_err(|e| invalid(format!("malformed frame: {e}")));
    if buf.capacity() > KEEP_CAPACITY {
        buf.clear();
        buf.shrink_to(KEEP_CAPACITY);
    }
    frame.map(Some)
}

#[cfg(test)]
#[path = "frame_tests.rs"]
mod tests;
