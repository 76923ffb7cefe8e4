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
//! entry is applied only once it is durable in the log, and after a crash
//! the group re-applies from the last applied index that reached disk (the
//! state writer checkpoints at least every
//! [`STATE_CHECKPOINT`](crate::storage::STATE_CHECKPOINT)). Building a
//! snapshot flushes first and commits durably, so the state a snapshot
//! describes is never older on disk than the log it lets openraft purge.
use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, RaftSnapshotBuilder};
use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, Notify};

use crate::log_store::{put_meta, read_meta};
use crate::machine::Machine;
use crate::storage::{Storage, StoreError, META, SNAPSHOT};
use crate::types::{
    decode, encode, io_read, io_write, Entry, LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};

/// Applied data held in memory past which a group flushes it.
pub const FLUSH_BYTES: usize = 2 << 20;
/// Longest time applied data stays only in memory while entries keep
/// being applied.
pub const FLUSH_AGE: Duration = Duration::from_secs(1);
/// While a flush is under way, applying pauses once this much more has
/// piled up in memory.
const HOLD_BYTES: usize = 4 * FLUSH_BYTES;

/// A snapshot as stored: its metadata and the machine's payload.
#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

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
    snapshot_seq: AtomicU64,
}

/// State machine of one group; clones share state.
#[derive(Clone)]
pub struct GroupStateMachine {
    shared: Arc<Shared>,
}

impl GroupStateMachine {
    /// The group's state machine, with the applied state the state file holds.
    pub fn new(group: &str, storage: Arc<Storage>, machine: Arc<dyn Machine>) -> Result<Self, StorageError> {
        let last = read_meta::<Option<LogId>>(storage.state(), group, "applied")?.flatten();
        let membership = read_meta(storage.state(), group, "membership")?.unwrap_or_default();
        let applied = Applied { last, membership, unflushed_since: None, flushing: false, failed: None };
        let shared = Shared {
            group: group.into(),
            storage,
            machine,
            applied: Mutex::new(applied),
            flush_done: Notify::new(),
            snapshot_seq: AtomicU64::new(0),
        };
        Ok(Self { shared: Arc::new(shared) })
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
    async fn when_idle<R>(&self, f: impl FnOnce(&mut Applied) -> R) -> Result<R, StorageError> {
        loop {
            let done = self.shared.flush_done.notified();
            tokio::pin!(done);
            done.as_mut().enable();
            {
                let mut a = self.applied();
                if let Some(e) = &a.failed {
                    return Err(io_write(e));
                }
                if !a.flushing {
                    return Ok(f(&mut a));
                }
            }
            done.await;
        }
    }

    /// Write everything applied so far to the state file (made durable with
    /// `durable`, else at the next checkpoint).
    pub async fn flush(&self, durable: bool) -> Result<(), StorageError> {
        let rx = self.when_idle(|a| self.start_flush(a, durable)).await?;
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(io_write(e)),
            Err(_) => Err(io_write(StoreError::WriterStopped)),
        }
    }
}

impl RaftSnapshotBuilder<TypeConfig> for GroupStateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        // Everything applied so far goes to the file first; the snapshot is
        // then read from one read transaction, so its data and applied
        // index agree even while applying goes on.
        self.flush(false).await?;
        let s = &self.shared;
        let (applied, membership, data) = {
            let txn = s.storage.state().read().map_err(io_read)?;
            let m = txn.open_table(META).map_err(io_read)?;
            let get = |name: &str| -> Result<Option<Vec<u8>>, StorageError> {
                Ok(m.get((&*s.group, name)).map_err(io_read)?.map(|v| v.value().to_vec()))
            };
            let applied: Option<LogId> = match get("applied")? {
                Some(b) => decode(&b).map_err(io_read)?,
                None => None,
            };
            let membership: StoredMembership = match get("membership")? {
                Some(b) => decode(&b).map_err(io_read)?,
                None => StoredMembership::default(),
            };
            let data = s.machine.export(&txn).map_err(io_read)?;
            (applied, membership, data)
        };
        let seq = s.snapshot_seq.fetch_add(1, Ordering::Relaxed);
        let snapshot_id = match applied {
            Some(l) => format!("{}-{}-{}", l.leader_id.term, l.index, seq),
            None => format!("0-0-{seq}"),
        };
        let meta = SnapshotMeta { last_log_id: applied, last_membership: membership, snapshot_id };
        let stored = encode(&StoredSnapshot { meta: meta.clone(), data });
        let group = s.group.clone();
        // Durable: this commit also makes the applied state it describes durable.
        s.storage
            .state()
            .writer()
            .call(true, move |txn| {
                let mut t = txn.open_table(SNAPSHOT).map_err(|e| e.to_string())?;
                t.insert(&*group, stored.as_slice()).map_err(|e| e.to_string())?;
                Ok(stored)
            })
            .await
            .map_err(io_write)
            .map(|stored| {
                let s: StoredSnapshot = decode(&stored).expect("just encoded");
                Snapshot { meta, snapshot: Box::new(Cursor::new(s.data)) }
            })
    }
}

impl RaftStateMachine<TypeConfig> for GroupStateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let a = self.applied();
        Ok((a.last, a.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Vec<u8>>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let s = &self.shared;
        let (replies, hold) = {
            // Held for the whole batch: a flush sets aside the machine's
            // data and the applied index together.
            let mut a = self.applied();
            if let Some(e) = &a.failed {
                return Err(io_write(e));
            }
            let mut replies = Vec::new();
            for e in entries {
                match &e.payload {
                    EntryPayload::Blank => replies.push(Vec::new()),
                    EntryPayload::Normal(p) => {
                        replies.push(s.machine.apply(s.storage.state(), p.now_ms, &p.body).map_err(io_write)?)
                    }
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
            (replies, a.flushing && unflushed >= HOLD_BYTES)
        };
        if hold {
            // Memory is filling faster than the state file takes it.
            self.when_idle(|_| ()).await?;
        }
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let s = &self.shared;
        let group = s.group.clone();
        let machine = s.machine.clone();
        let meta = meta.clone();
        // No flush may run meanwhile: it would write data the snapshot replaces.
        self.when_idle(|a| a.flushing = true).await?;
        let (last, membership) = (meta.last_log_id, meta.last_membership.clone());
        let written = s
            .storage
            .state()
            .writer()
            .call(true, move |txn| {
                machine.import(txn, &data)?;
                put_meta(txn, &group, "applied", &encode(&meta.last_log_id))?;
                put_meta(txn, &group, "membership", &encode(&meta.last_membership))?;
                let stored = encode(&StoredSnapshot { meta, data });
                let mut t = txn.open_table(SNAPSHOT).map_err(|e| e.to_string())?;
                t.insert(&*group, stored.as_slice()).map_err(|e| e.to_string())?;
                Ok(())
            })
            .await
            .map_err(io_write)
            .and_then(|()| s.machine.reload(s.storage.state()).map_err(io_write));
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

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        let s = &self.shared;
        let txn = s.storage.state().read().map_err(io_read)?;
        let t = txn.open_table(SNAPSHOT).map_err(io_read)?;
        let Some(v) = t.get(&*s.group).map_err(io_read)? else {
            return Ok(None);
        };
        let s: StoredSnapshot = decode(v.value()).map_err(io_read)?;
        Ok(Some(Snapshot { meta: s.meta, snapshot: Box::new(Cursor::new(s.data)) }))
    }
}
