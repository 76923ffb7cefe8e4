//! Snapshots stream: they are read out of the state file piece by piece
//! as they are sent, and written into it piece by piece as they arrive.
//! Neither side ever holds a whole snapshot in memory, and no copy of the
//! data is kept beside it.
//!
//! ```text
//!  leader                                         follower
//!  read txn of state.redb ─ piece ─ piece ─ ... ─> staged in state.redb
//!  (applied index, membership,                     (next to the live data,
//!   the machine's data: one                         one small transaction
//!   consistent view)                                a piece)
//!                                         done ──> install: the staged data
//!                                                  replaces the live data and
//!                                                  the applied index, in one
//!                                                  durable transaction
//! ```
//!
//! A group's snapshot is its state file itself: building one makes the
//! applied state durable (so openraft may purge the log behind it) and
//! copies nothing; sending one opens a read transaction, whose view stays
//! fixed however long the transfer takes.

use redb::WriteTransaction;

use crate::log_store::put_meta;
use crate::machine::FlushJob;
use crate::storage::{Db, META};

/// Reads a machine's data out of one read transaction, a piece at a time.
pub trait SnapshotPieces: Send + 'static {
    /// The next piece, about `max_bytes` long (a single large record may
    /// make it longer), or `None` once everything has been read.
    fn next_piece(&mut self, max_bytes: usize) -> Result<Option<Vec<u8>>, String>;
}

/// A snapshot's payload, as openraft passes it between the state machine
/// and the network.
pub struct SnapshotData(Payload);

enum Payload {
    /// To be read from the state file as it is sent.
    Pieces(Box<dyn SnapshotPieces>),
    /// Already received and staged in the state file next to the live data.
    Staged,
}

impl SnapshotData {
    pub fn pieces(p: Box<dyn SnapshotPieces>) -> Self {
        Self(Payload::Pieces(p))
    }

    /// A snapshot whose pieces the receiving node has staged.
    pub fn staged() -> Self {
        Self(Payload::Staged)
    }

    /// The reader of a snapshot to send; `None` for a staged one, which
    /// has nothing left to read.
    pub fn into_pieces(self) -> Option<Box<dyn SnapshotPieces>> {
        match self.0 {
            Payload::Pieces(p) => Some(p),
            Payload::Staged => None,
        }
    }
}

impl std::fmt::Debug for SnapshotData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            Payload::Pieces(_) => "SnapshotData::Pieces",
            Payload::Staged => "SnapshotData::Staged",
        })
    }
}

/// The pieces of a machine whose whole data is one small record (the
/// control plane's): the record cut at the piece size.
pub struct WholePieces {
    data: Vec<u8>,
    at: usize,
    sent_one: bool,
}

impl WholePieces {
    pub fn new(data: Vec<u8>) -> Self {
        Self { data, at: 0, sent_one: false }
    }
}

impl SnapshotPieces for WholePieces {
    fn next_piece(&mut self, max_bytes: usize) -> Result<Option<Vec<u8>>, String> {
        // An empty record is still one (empty) piece.
        if self.at == self.data.len() && self.sent_one {
            return Ok(None);
        }
        let end = (self.at + max_bytes.max(1)).min(self.data.len());
        let piece = self.data[self.at..end].to_vec();
        self.at = end;
        self.sent_one = true;
        Ok(Some(piece))
    }
}

/// Where [`stage_whole`] gathers a whole-record snapshot.
const STAGED_WHOLE: &str = "snapshot-in";

/// The job that stages one piece of a whole-record snapshot of `group`
/// (the first piece of a transfer drops what an earlier, unfinished one
/// staged).
pub fn stage_whole(group: &str, first: bool, piece: &[u8]) -> FlushJob {
    let (group, piece) = (group.to_string(), piece.to_vec());
    Box::new(move |txn: &WriteTransaction| {
        let mut staged = if first { Vec::new() } else { take_staged(txn, &group)? };
        staged.extend_from_slice(&piece);
        put_meta(txn, &group, STAGED_WHOLE, &staged)
    })
}

/// The whole record staged for `group`, as the state file holds it.
pub fn read_staged(state: &Db, group: &str) -> Result<Vec<u8>, String> {
    let txn = state.read().map_err(|e| e.to_string())?;
    let t = txn.open_table(META).map_err(|e| e.to_string())?;
    let staged = t.get((group, STAGED_WHOLE)).map_err(|e| e.to_string())?;
    Ok(staged.map(|v| v.value().to_vec()).unwrap_or_default())
}

/// The whole record staged for `group`, removed from the staging area.
pub fn take_staged(txn: &WriteTransaction, group: &str) -> Result<Vec<u8>, String> {
    let mut t = txn.open_table(META).map_err(|e| e.to_string())?;
    let staged = t.remove((group, STAGED_WHOLE)).map_err(|e| e.to_string())?.map(|v| v.value().to_vec());
    Ok(staged.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(mut p: impl SnapshotPieces, max: usize) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| p.next_piece(max).unwrap()).collect()
    }

    #[test]
    fn a_whole_record_is_cut_at_the_piece_size_and_an_empty_one_is_one_piece() {
        assert_eq!(all(WholePieces::new(b"abcde".to_vec()), 2), vec![b"ab".to_vec(), b"cd".to_vec(), b"e".to_vec()]);
        assert_eq!(all(WholePieces::new(Vec::new()), 2), vec![Vec::<u8>::new()]);
    }

    #[tokio::test]
    async fn staged_pieces_gather_and_a_first_piece_starts_over() {
        let s = crate::Storage::in_memory().unwrap();
        let stage = |first: bool, piece: &'static [u8]| {
            let w = s.state().writer().clone();
            let job = stage_whole("_cp", first, piece);
            async move { w.call(false, job).await.unwrap() }
        };
        stage(true, b"old").await;
        stage(true, b"ab").await;
        stage(false, b"cd").await;
        assert_eq!(read_staged(s.state(), "_cp").unwrap(), b"abcd");
        let got = s.state().writer().call(false, |txn| take_staged(txn, "_cp")).await.unwrap();
        assert_eq!(got, b"abcd");
        let again = s.state().writer().call(false, |txn| take_staged(txn, "_cp")).await.unwrap();
        assert!(again.is_empty(), "taking the record removes it");
    }
}
