//! The openraft state machine of one group: applied index, membership and
//! snapshots, persisted in the node's state file next to the group's
//! [`Machine`] data.
//!
//! ```text
//!  apply ──> Machine (memory) ──flush──> state writer ──> state.redb
//!            applied index, membership ─┘   (one transaction, no fsync)
//! ```
//!
//! Entries apply in memory ([`Machine::apply`]). Once the applied data has
//! grown past [`FLUSH_BYTES`] or is older than [`FLUSH_AGE`], the group
//! flushes it: the machine's set-aside data, the applied index and the
//! membership go to the state file in one transaction, so the file never
//! claims an index its data does not hold. The flush needs no fsync: an
//! entry is applied only once it is committed, durable on a quorum, and
//! after a crash the group re-applies from the last applied index that
//! reached disk (the state writer checkpoints at least every
//! [`STATE_CHECKPOINT`](crate::storage::STATE_CHECKPOINT)). A leader may
//! apply an entry its followers hold durably while its own fsync of it is
//! still running; should the state file then reach disk ahead of the log,
//! openraft finds the applied index past the log's end at restart and
//! treats the log as purged up to it, which is right: those entries are
//! committed.
//!
//! A snapshot is the state file itself ([`crate::snapshot`]): building
//! one flushes and commits durably, so the state it describes is never
//! older on disk than the log it lets openraft purge, and copies nothing;
//! sending one reads a read transaction's view piece by piece; receiving
//! one stages its pieces next to the live data and swaps them in at the
//! end, with the applied index, in one durable transaction.
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder};
use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;

use crate::log_store::{put_meta, read_meta};
use crate::machine::Machine;
use crate::snapshot::SnapshotData;
use crate::storage::{Storage, StoreError, META, SNAPSHOT};
use crate::types::{decode, encode, io_err, Entry, LogId, Snapshot, SnapshotMeta, StoredMembership, TypeConfig};

/// Applied data held in memory past which a group flushes it.
pub const FLUSH_BYTES: usize = 2 << 20;
/// Longest time applied data stays only in memory while entries keep
/// being applied.
pub const FLUSH_AGE: Duration = Duration::from_secs(1);
/// While a flush is under way, applying pauses once this much more has
/// piled up in memory.
const HOLD_BYTES: usize = 4 * FLUSH_BYTES;
/// Time between flushes while the machine has a backlog
/// ([`Machine::backlog`]): a dropped slot's rows go at most
/// `PURGE_BYTES` per flush (`kv_purge`), so at a few tens of MiB/s.
pub const PURGE_PAUSE: Duration = Duration::from_millis(100);

/// Piece size when a snapshot is read out in one go (installed locally
/// rather than received).
const LOCAL_PIECE: usize = 4 << 20;

/// The group's applied state as held in memory, ahead of the state file.
struct Applied {
    last: Option<LogId>,
    membership: StoredMembership,
    /// When the oldest apply not yet flushed happened.
    unflushed_since: Option<Instant>,
    /// A flush job is queued or running.
    flushing: bool,
    /// Why the last flush failed: the group cannot go on.
    failed: Option<String>,
}

struct Shared {
    group: Arc<str>,
    storage: Arc<Storage>,
    machine: Arc<dyn Machine>,
    applied: Mutex<Applied>,
    /// Woken when a flush ends.
    flush_done: Notify,
    /// Wakes the task that works off the machine's backlog.
    backlog: Arc<Notify>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The backlog task holds no reference while it waits: wake it to
        // find the group gone.
        self.backlog.notify_one();
    }
}

/// State machine of one group; clones share state.
#[derive(Clone)]
pub struct GroupStateMachine {
    shared: Arc<Shared>,
}

impl GroupStateMachine {
    /// The group's state machine, with the applied state the state file holds.
    pub fn new(group: &str, storage: Arc<Storage>, machine: Arc<dyn Machine>) -> Result<Self, io::Error> {
        let last = read_meta::<Option<LogId>>(storage.state(), group, "applied")?.flatten();
        let membership = read_meta(storage.state(), group, "membership")?.unwrap_or_default();
        let applied = Applied { last, membership, unflushed_since: None, flushing: false, failed: None };
        // Snapshots were once stored as whole copies: drop any such copy.
        let owned = group.to_string();
        storage.state().writer().submit(
            false,
            move |txn| {
                let mut t = txn.open_table(SNAPSHOT).map_err(|e| e.to_string())?;
                t.remove(owned.as_str()).map(drop).map_err(|e| e.to_string())
            },
            |_: Result<(), String>| {},
        );
        let backlog = Arc::new(Notify::new());
        if machine.backlog() {
            // Left over from before a restart.
            backlog.notify_one();
        }
        let shared = Shared {
            group: group.into(),
            storage,
            machine,
            applied: Mutex::new(applied),
            flush_done: Notify::new(),
            backlog,
        };
        Ok(Self { shared: Arc::new(shared) })
    }

    /// Work off the machine's backlog whenever it has one: flush every
    /// [`PURGE_PAUSE`] until it has none. Runs until the group is dropped.
    pub fn drive_backlog(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let group = Arc::downgrade(&self.shared);
        let wake = self.shared.backlog.clone();
        async move {
            loop {
                wake.notified().await;
                loop {
                    tokio::time::sleep(PURGE_PAUSE).await;
                    let Some(shared) = group.upgrade() else { return };
                    if !shared.machine.backlog() {
                        break;
                    }
                    if let Err(e) = (GroupStateMachine { shared }).flush(false).await {
                        tracing::debug!(error = %e, "backlog flush failed; the group has stopped");
                        return;
                    }
                }
            }
        }
    }

    /// The state file as it stands, as a snapshot: its applied index and
    /// membership, and a reader of the machine's data, all from one read
    /// transaction. `None` while nothing has been applied, unless `empty`
    /// asks for the snapshot of a group that applied nothing yet.
    async fn read_snapshot(&self, empty: bool) -> Result<Option<Snapshot>, io::Error> {
        let s = &self.shared;
        let (storage, machine, name) = (s.storage.clone(), s.machine.clone(), s.group.clone());
        crate::runtime::blocking(move || -> Result<Option<Snapshot>, io::Error> {
            let txn = storage.state().read().map_err(io_err)?;
            let m = txn.open_table(META).map_err(io_err)?;
            let get = |key: &str| -> Result<Option<Vec<u8>>, io::Error> {
                Ok(m.get((&*name, key)).map_err(io_err)?.map(|v| v.value().to_vec()))
            };
            let applied: Option<LogId> = match get("applied")? {
                Some(b) => decode(&b).map_err(io_err)?,
                None => None,
            };
            if applied.is_none() && !empty {
                return Ok(None);
            }
            let membership: StoredMembership = match get("membership")? {
                Some(b) => decode(&b).map_err(io_err)?,
                None => StoredMembership::default(),
            };
            let pieces = machine.export(&txn).map_err(io_err)?;
            let meta = SnapshotMeta { last_log_id: applied, last_membership: membership };
            Ok(Some(Snapshot { meta, snapshot: SnapshotData::pieces(pieces) }))
        })
        .await
        .map_err(io_err)?
    }

    /// Queue the staging of one piece of a snapshot being received
    /// (`first` starts a new one); the receiver hears when it has
    /// committed. Pieces stage in the order they are queued. A piece the
    /// machine cannot read is refused at once, and nothing is queued. Not
    /// durable on its own: the install that ends the transfer is.
    pub fn stage_piece(&self, first: bool, piece: &[u8]) -> Result<oneshot::Receiver<Result<(), String>>, io::Error> {
        let job = self.shared.machine.stage(first, piece).map_err(io_err)?;
        let (tx, rx) = oneshot::channel();
        self.shared.storage.state().writer().submit(false, job, move |r| {
            let _ = tx.send(r);
        });
        Ok(rx)
    }

    /// Drop whatever a transfer staged and did not install (a transfer
    /// refused or cut short, or a snapshot openraft found no newer than
    /// what the group holds). Queued behind every staging before it.
    pub fn discard_staged(&self) {
        let job = self.shared.machine.unstage();
        let group = self.shared.group.clone();
        self.shared.storage.state().writer().submit(false, job, move |r: Result<(), String>| {
            if let Err(e) = r {
                tracing::warn!(%group, error = %e, "could not drop a staged snapshot; the next transfer or restart does");
            }
        });
    }

    /// Most bytes an arriving snapshot may carry (see [`Machine::max_snapshot_bytes`]).
    pub fn max_snapshot_bytes(&self) -> Option<u64> {
        self.shared.machine.max_snapshot_bytes()
    }

    /// Whether what is staged is a whole snapshot the machine can install.
    pub fn check_staged(&self) -> Result<(), io::Error> {
        self.shared.machine.check_staged(self.shared.storage.state()).map_err(io_err)
    }

    fn applied(&self) -> MutexGuard<'_, Applied> {
        self.shared.applied.lock().expect("applied lock")
    }

    /// Queue a flush of everything applied so far; the receiver hears when
    /// it has committed. The caller has checked that no flush is under way.
    fn start_flush(&self, applied: &mut Applied, durable: bool) -> oneshot::Receiver<Result<(), String>> {
        debug_assert!(!applied.flushing);
        applied.flushing = true;
        applied.unflushed_since = None;
        let job = self.shared.machine.freeze();
        let group = self.shared.group.clone();
        let last = encode(&applied.last);
        let membership = encode(&applied.membership);
        let shared = self.shared.clone();
        let (tx, rx) = oneshot::channel();
        self.shared.storage.state().writer().submit(
            durable,
            move |txn| {
                job(txn)?;
                put_meta(txn, &group, "applied", &last)?;
                put_meta(txn, &group, "membership", &membership)
            },
            move |r: Result<(), String>| {
                shared.machine.flushed(r.is_ok());
                // The flush may have left work behind (slots it began to purge).
                if r.is_ok() && shared.machine.backlog() {
                    shared.backlog.notify_one();
                }
                {
                    let mut a = shared.applied.lock().expect("applied lock");
                    a.flushing = false;
                    if let Err(e) = &r {
                        a.failed = Some(e.clone());
                    }
                }
                shared.flush_done.notify_waiters();
                let _ = tx.send(r);
            },
        );
        rx
    }

    /// Wait until no flush is under way, then run `f` with the applied
    /// state locked.
    async fn when_idle<R>(&self, f: impl FnOnce(&mut Applied) -> R) -> Result<R, io::Error> {
        loop {
            let done = self.shared.flush_done.notified();
            tokio::pin!(done);
            done.as_mut().enable();
            {
                let mut a = self.applied();
                if let Some(e) = &a.failed {
                    return Err(io_err(e));
                }
                if !a.flushing {
                    return Ok(f(&mut a));
                }
            }
            done.await;
        }
    }

    /// Apply `entries` in order and return each one's reply.
    pub async fn apply_entries(&self, entries: Vec<Entry>) -> Result<Vec<Vec<u8>>, io::Error> {
        let s = &self.shared;
        let (replies, hold) = {
            // Held for the whole batch: a flush sets aside the machine's
            // data and the applied index together.
            let mut a = self.applied();
            if let Some(e) = &a.failed {
                return Err(io_err(e));
            }
            let mut replies = Vec::new();
            for e in entries {
                match &e.payload {
                    EntryPayload::Blank => replies.push(Vec::new()),
                    EntryPayload::Normal(p) => replies
                        .push(s.machine.apply(s.storage.state(), e.log_id.index, p.now_ms, &p.body).map_err(io_err)?),
                    EntryPayload::Membership(m) => {
                        a.membership = StoredMembership::new(Some(e.log_id), m.clone());
                        replies.push(Vec::new());
                    }
                }
                a.last = Some(e.log_id);
            }
            let since = *a.unflushed_since.get_or_insert_with(Instant::now);
            let unflushed = s.machine.unflushed_bytes();
            if !a.flushing && (unflushed >= FLUSH_BYTES || since.elapsed() >= FLUSH_AGE) {
                drop(self.start_flush(&mut a, false));
            }
            if s.machine.backlog() {
                s.backlog.notify_one();
            }
            (replies, a.flushing && unflushed >= HOLD_BYTES)
        };
        if hold {
            // Memory is filling faster than the state file takes it.
            self.when_idle(|_| ()).await?;
        }
        Ok(replies)
    }

    /// Write everything applied so far to the state file (made durable with
    /// `durable`, else at the next checkpoint).
    pub async fn flush(&self, durable: bool) -> Result<(), io::Error> {
        let rx = self.when_idle(|a| self.start_flush(a, durable)).await?;
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(io_err(e)),
            Err(_) => Err(io_err(StoreError::WriterStopped)),
        }
    }
}

/// Delete every `(group, _)` row of a metadata table.
pub(crate) fn purge_meta(txn: &redb::WriteTransaction, group: &str) -> Result<(), String> {
    // A handful of rows per group: one pass over the table is cheap.
    let mut t = txn.open_table(META).map_err(|e| e.to_string())?;
    t.retain(|(g, _), _| g != group).map_err(|e| e.to_string())
}

impl GroupStateMachine {
    /// Delete everything the state file holds for this group (its data,
    /// applied index, membership and snapshot), durably at the end. The
    /// data goes [`PURGE_CHUNK`](crate::log_store::PURGE_CHUNK) at a time,
    /// taking turns with the node's other background deletions
    /// ([`paced`](crate::log_store::paced)): a replica's hundreds of MiB
    /// deleted in one transaction would hold the state writer, and every
    /// other group's flushes, for a second or more.
    pub async fn purge(&self) -> Result<(), io::Error> {
        self.when_idle(|a| a.flushing = true).await?;
        let s = &self.shared;
        {
            // Nothing may write for the group again (a backlog flush
            // would bring back its applied index and rows).
            let mut a = self.applied();
            a.flushing = false;
            a.failed = Some(format!("{}: purged from this node", s.group));
        }
        s.flush_done.notify_waiters();
        loop {
            let _turn = s.storage.purge_turn().lock().await;
            let machine = s.machine.clone();
            let (done, _) = crate::log_store::paced(s.storage.state(), move |txn| {
                machine.purge_some(txn, crate::log_store::PURGE_CHUNK)
            })
            .await;
            if done.map_err(io_err)? {
                break;
            }
        }
        let group = s.group.clone();
        s.storage
            .state()
            .writer()
            .call(true, move |txn| {
                purge_meta(txn, &group)?;
                let mut t = txn.open_table(SNAPSHOT).map_err(|e| e.to_string())?;
                t.remove(&*group).map_err(|e| e.to_string())?;
                Ok(())
            })
            .await
            .map_err(io_err)
    }
}

impl GroupStateMachine {
    /// Stage every piece of a snapshot read on this node, then check it.
    async fn stage_all(&self, mut pieces: Box<dyn crate::snapshot::SnapshotPieces>) -> Result<(), io::Error> {
        let mut first = true;
        loop {
            let (back, piece) = crate::runtime::blocking(move || {
                let p = pieces.next_piece(LOCAL_PIECE);
                (pieces, p)
            })
            .await?;
            pieces = back;
            let Some(piece) = piece.map_err(io_err)? else { break };
            self.stage_piece(first, &piece)?.await.map_err(io_err)?.map_err(io_err)?;
            first = false;
        }
        self.check_staged()
    }
}

impl RaftSnapshotBuilder<TypeConfig> for GroupStateMachine {
    type SnapshotData = SnapshotData;

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        // Everything applied so far goes to the file, durably: the file is
        // then the snapshot, and the log behind it may be purged.
        self.flush(true).await?;
        let snapshot = self.read_snapshot(true).await?;
        Ok(snapshot.expect("a snapshot is read even when nothing was applied"))
    }
}

impl RaftStateMachine<TypeConfig> for GroupStateMachine {
    type SnapshotData = SnapshotData;
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        let a = self.applied();
        Ok((a.last, a.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend,
    {
        // The stream yields what openraft already holds in memory; gather
        // it so the batch applies under one lock.
        let mut batch = Vec::new();
        let mut responders = Vec::new();
        while let Some(item) = entries.next().await {
            let (entry, responder) = item?;
            batch.push(entry);
            responders.push(responder);
        }
        let replies = self.apply_entries(batch).await?;
        for (responder, reply) in responders.into_iter().zip(replies) {
            if let Some(r) = responder {
                r.send(reply);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn install_snapshot(&mut self, meta: &SnapshotMeta, snapshot: SnapshotData) -> Result<(), io::Error> {
        let s = &self.shared;
        let group = s.group.clone();
        let machine = s.machine.clone();
        let meta = meta.clone();
        // No flush may run meanwhile: it would write data the snapshot replaces.
        self.when_idle(|a| a.flushing = true).await?;
        let (last, membership) = (meta.last_log_id, meta.last_membership.clone());
        // A snapshot read here rather than received (a local install) is
        // staged first, like a received one.
        if let Some(pieces) = snapshot.into_pieces() {
            if let Err(e) = self.stage_all(pieces).await {
                self.applied().flushing = false;
                s.flush_done.notify_waiters();
                return Err(e);
            }
        }
        let written = s
            .storage
            .state()
            .writer()
            .call(true, move |txn| {
                machine.import_staged(txn)?;
                put_meta(txn, &group, "applied", &encode(&meta.last_log_id))?;
                put_meta(txn, &group, "membership", &encode(&meta.last_membership))
            })
            .await
            .map_err(io_err)
            .and_then(|()| s.machine.reload(s.storage.state()).map_err(io_err));
        {
            let mut a = self.applied();
            a.flushing = false;
            match &written {
                Ok(()) => {
                    a.last = last;
                    a.membership = membership;
                    a.unflushed_since = None;
                }
                Err(e) => a.failed = Some(e.to_string()),
            }
        }
        s.flush_done.notify_waiters();
        written
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        // The state file as flushed so far: at or past the last snapshot
        // built, whose log openraft may have purged.
        self.read_snapshot(false).await
    }
}
