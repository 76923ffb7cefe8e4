//! The openraft state machine of one group: applied index, membership and
//! snapshots, persisted in the node's state file next to the group's
//! [`Machine`] data.
//!
//! Applies go through the state file's writer without an fsync of their
//! own: an entry is applied only once it is durable in the log, and after a
//! crash the group re-applies from the last applied index that reached disk
//! (the state writer checkpoints at least every
//! [`STATE_CHECKPOINT`](crate::storage::STATE_CHECKPOINT)). Building a
//! snapshot commits durably, so the state a snapshot describes is never
//! older on disk than the log it lets openraft purge.
use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, RaftSnapshotBuilder};
use serde::{Deserialize, Serialize};

use crate::log_store::{put_meta, read_meta};
use crate::machine::Machine;
use crate::storage::{Storage, META, SNAPSHOT};
use crate::types::{
    decode, encode, io_read, io_write, Entry, LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};

/// A snapshot as stored: its metadata and the machine's payload.
#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

/// State machine of one group; clones share state.
#[derive(Clone)]
pub struct GroupStateMachine {
    group: Arc<str>,
    storage: Arc<Storage>,
    machine: Arc<dyn Machine>,
    snapshot_seq: Arc<AtomicU64>,
}

impl GroupStateMachine {
    pub fn new(group: &str, storage: Arc<Storage>, machine: Arc<dyn Machine>) -> Self {
        Self { group: group.into(), storage, machine, snapshot_seq: Arc::default() }
    }
}

impl RaftSnapshotBuilder<TypeConfig> for GroupStateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let (applied, membership, data) = {
            let txn = self.storage.state().read().map_err(io_read)?;
            let m = txn.open_table(META).map_err(io_read)?;
            let get = |name: &str| -> Result<Option<Vec<u8>>, StorageError> {
                Ok(m.get((&*self.group, name)).map_err(io_read)?.map(|v| v.value().to_vec()))
            };
            let applied: Option<LogId> = match get("applied")? {
                Some(b) => decode(&b).map_err(io_read)?,
                None => None,
            };
            let membership: StoredMembership = match get("membership")? {
                Some(b) => decode(&b).map_err(io_read)?,
                None => StoredMembership::default(),
            };
            let data = self.machine.export(&txn).map_err(io_read)?;
            (applied, membership, data)
        };
        let seq = self.snapshot_seq.fetch_add(1, Ordering::Relaxed);
        let snapshot_id = match applied {
            Some(l) => format!("{}-{}-{}", l.leader_id.term, l.index, seq),
            None => format!("0-0-{seq}"),
        };
        let meta = SnapshotMeta { last_log_id: applied, last_membership: membership, snapshot_id };
        let stored = encode(&StoredSnapshot { meta: meta.clone(), data });
        let group = self.group.clone();
        // Durable: this commit also makes the applied state it describes durable.
        self.storage
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
        let applied: Option<LogId> =
            read_meta::<Option<LogId>>(self.storage.state(), &self.group, "applied")?.flatten();
        let membership: StoredMembership =
            read_meta(self.storage.state(), &self.group, "membership")?.unwrap_or_default();
        Ok((applied, membership))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Vec<u8>>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let group = self.group.clone();
        let machine = self.machine.clone();
        let replies = self
            .storage
            .state()
            .writer()
            .call(false, move |txn| {
                let mut replies = Vec::with_capacity(entries.len());
                let mut membership: Option<StoredMembership> = None;
                for e in &entries {
                    match &e.payload {
                        EntryPayload::Blank => replies.push(Vec::new()),
                        EntryPayload::Normal(p) => replies.push(machine.apply(txn, p.now_ms, &p.body)?),
                        EntryPayload::Membership(m) => {
                            membership = Some(StoredMembership::new(Some(e.log_id), m.clone()));
                            replies.push(Vec::new());
                        }
                    }
                }
                let last = entries.last().map(|e| e.log_id);
                put_meta(txn, &group, "applied", &encode(&last))?;
                if let Some(m) = membership {
                    put_meta(txn, &group, "membership", &encode(&m))?;
                }
                Ok(replies)
            })
            .await
            .map_err(io_write)?;
        self.machine.committed();
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
        let group = self.group.clone();
        let machine = self.machine.clone();
        let meta = meta.clone();
        self.storage
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
            .map_err(io_write)?;
        self.machine.committed();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        let txn = self.storage.state().read().map_err(io_read)?;
        let t = txn.open_table(SNAPSHOT).map_err(io_read)?;
        let Some(v) = t.get(&*self.group).map_err(io_read)? else {
            return Ok(None);
        };
        let s: StoredSnapshot = decode(v.value()).map_err(io_read)?;
        Ok(Some(Snapshot { meta: s.meta, snapshot: Box::new(Cursor::new(s.data)) }))
    }
}
