//! One group's view of the node-wide Raft log.
//!
//! Appends are queued to the [`Writer`](crate::storage::Writer) and reported
//! flushed only after their transaction is durable. openraft reads an entry
//! as soon as `append` returns, before it is on disk: a leader sends it to
//! its followers while its own fsync runs, so one fsync, not two in a row,
//! lies on a write's path. The newest entries therefore also sit in memory
//! (`tail`): every entry until it is durable, and the last [`TAIL_KEEP`]
//! after it, since replication reads what was just appended. The tail is a
//! contiguous run of indexes ending at the last entry, so a read that starts
//! inside it needs no redb transaction; other reads look in the tail first,
//! then in redb (in that order, so an entry moving from one to the other is
//! never missed).
//!
//! Purging is cut into transactions of at most [`PURGE_CHUNK`] bytes: a
//! purge behind a snapshot may cover a whole slot move's entries (hundreds
//! of MiB), and one transaction deleting them would hold the node's log
//! writer, and with it every group's appends, for a second or more. The
//! purge records its new first index and deletes the first chunk at once;
//! a task deletes the rest. Deleting costs about as much as writing (redb
//! reads every page it frees), so the task leaves the writer to appends
//! at least as long as its last chunk took ([`CHUNK_PAUSE`] at the least),
//! and the groups of a node take turns: background purges take at most
//! half of the node's log writer. Nothing reads below the purged index
//! meanwhile, and a restart leaves what was not yet deleted to the next
//! purge.
//!
//! The store counts the bytes it appends ([`LogStore::appended`]), so that
//! a group can snapshot after so many bytes as well as after so many
//! entries ([`crate::log_gc`]).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use openraft::storage::{IOFlushed, RaftLogStorage};
use openraft::{LogState, RaftLogReader};

use crate::storage::{Db, Storage, StoreError, LOG, META};
use crate::types::{decode, encode, io_err, Entry, LogId, TypeConfig, Vote};

/// Entries kept in memory after they are durable, for replication reads.
const TAIL_KEEP: usize = 128;

/// Most bytes of entries one purge transaction deletes.
pub(crate) const PURGE_CHUNK: usize = 2 << 20;
/// Most entries one purge transaction deletes.
const PURGE_ENTRIES: usize = 5_000;
/// Least pause after a background purge transaction.
const CHUNK_PAUSE: std::time::Duration = std::time::Duration::from_millis(10);

/// The purge under way in the background: delete every entry up to
/// `upto`; `running` while a task does.
#[derive(Debug, Default)]
struct Purger {
    upto: u64,
    running: bool,
}

/// The newest entries: index -> (entry, durable yet).
type Tail = BTreeMap<u64, (Entry, bool)>;

/// Log storage of one group; clones share state.
#[derive(Clone)]
pub struct LogStore {
    group: Arc<str>,
    storage: Arc<Storage>,
    tail: Arc<Mutex<Tail>>,
    purger: Arc<Mutex<Purger>>,
    appended: Arc<AtomicU64>,
}

impl LogStore {
    pub fn new(group: &str, storage: Arc<Storage>) -> Self {
        let appended = Arc::default();
        Self { group: group.into(), storage, tail: Arc::default(), purger: Arc::default(), appended }
    }

    /// Bytes of entries appended since the store was opened.
    pub fn appended(&self) -> Arc<AtomicU64> {
        self.appended.clone()
    }

    /// Delete the entries up to `upto` that a purge left, a chunk at a
    /// time, in a task of their own (one per group at a time).
    fn purge_later(&self, upto: u64) {
        {
            let mut p = self.purger.lock().expect("purger lock");
            p.upto = p.upto.max(upto);
            if p.running {
                return;
            }
            p.running = true;
        }
        // Weak: once the group's log store is gone (the group was dropped
        // from this node, which deletes its whole log), the task stops
        // rather than delete entries of a group started again by the name.
        let (group, storage, purger) = (self.group.clone(), self.storage.clone(), Arc::downgrade(&self.purger));
        tokio::spawn(async move {
            // The purge itself has just deleted a chunk.
            tokio::time::sleep(CHUNK_PAUSE).await;
            loop {
                let turn = storage.purge_turn().lock().await;
                let Some(purger) = purger.upgrade() else { return };
                let upto = purger.lock().expect("purger lock").upto;
                let g = group.clone();
                let (r, took) = paced(storage.log(), move |txn| delete_some(txn, &g, upto)).await;
                tracing::debug!(%group, upto, ?took, done = ?r, "log purge chunk");
                drop(turn);
                let mut p = purger.lock().expect("purger lock");
                match r {
                    Ok(false) => continue,
                    Ok(true) if p.upto > upto => continue,
                    Ok(true) => {}
                    Err(e) => tracing::warn!(%group, error = %e, "purging the log failed; the next purge retries"),
                }
                p.running = false;
                return;
            }
        });
    }

    fn read_meta<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<Option<T>, io::Error> {
        read_meta(self.storage.log(), &self.group, name)
    }

    async fn write_meta<T: serde::Serialize>(&self, name: &'static str, v: &T, durable: bool) -> Result<(), io::Error> {
        let group = self.group.clone();
        let bytes = encode(v);
        self.storage.log().writer().call(durable, move |txn| put_meta(txn, &group, name, &bytes)).await.map_err(io_err)
    }
}

/// One piece of a background deletion, while the caller holds the node's
/// purge turn ([`Storage::purge_turn`]): `delete` as one transaction of
/// `db`'s writer, then a pause for as long as it took ([`CHUNK_PAUSE`] at
/// the least), so that background deletions take at most half of the
/// writer. Its result, and how long it took.
pub(crate) async fn paced<T: Send + 'static>(
    db: &Db,
    delete: impl FnOnce(&redb::WriteTransaction) -> Result<T, String> + Send + 'static,
) -> (Result<T, StoreError>, std::time::Duration) {
    let began = tokio::time::Instant::now();
    let r = db.writer().call(false, delete).await;
    let took = began.elapsed();
    tokio::time::sleep(took.max(CHUNK_PAUSE)).await;
    (r, took)
}

/// Delete the first entries of `group` up to index `upto`, at most a
/// chunk's worth; whether none is left.
pub(crate) fn delete_some(txn: &redb::WriteTransaction, group: &str, upto: u64) -> Result<bool, String> {
    let mut t = txn.open_table(LOG).map_err(|e| e.to_string())?;
    let mut rows = t.extract_from_if((group, 0)..=(group, upto), |_, _| true).map_err(|e| e.to_string())?;
    let (mut bytes, mut entries) = (0, 0);
    while bytes < PURGE_CHUNK && entries < PURGE_ENTRIES {
        match rows.next() {
            Some(row) => {
                let (_, v) = row.map_err(|e| e.to_string())?;
                bytes += v.value().len();
                entries += 1;
            }
            None => return Ok(true),
        }
    }
    Ok(false)
}

/// Read a per-group metadata value from `db`.
pub(crate) fn read_meta<T: serde::de::DeserializeOwned>(
    db: &Db,
    group: &str,
    name: &str,
) -> Result<Option<T>, io::Error> {
    let txn = db.read().map_err(io_err)?;
    let t = txn.open_table(META).map_err(io_err)?;
    match t.get((group, name)).map_err(io_err)? {
        Some(v) => decode(v.value()).map(Some).map_err(io_err),
        None => Ok(None),
    }
}

/// Write a per-group metadata value inside the writer's transaction.
pub(crate) fn put_meta(txn: &redb::WriteTransaction, group: &str, name: &str, bytes: &[u8]) -> Result<(), String> {
    let mut m = txn.open_table(META).map_err(|e| e.to_string())?;
    m.insert((group, name), bytes).map_err(|e| e.to_string())?;
    Ok(())
}

fn bounds(range: &impl RangeBounds<u64>) -> (u64, u64) {
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e.saturating_add(1),
        Bound::Excluded(&e) => e,
        Bound::Unbounded => u64::MAX,
    };
    (start, end)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let (start, end) = bounds(&range);
        if start >= end {
            return Ok(Vec::new());
        }
        // The tail first, then redb: see the module docs.
        let mut out: BTreeMap<u64, Entry> = {
            let tail = self.tail.lock().expect("tail lock");
            let in_tail = tail.range(start..end).map(|(k, (e, _))| (*k, e.clone()));
            if tail.first_key_value().is_some_and(|(&first, _)| first <= start) {
                return Ok(in_tail.map(|(_, e)| e).collect());
            }
            in_tail.collect()
        };
        let txn = self.storage.log().read().map_err(io_err)?;
        let t = txn.open_table(LOG).map_err(io_err)?;
        for row in t.range((&*self.group, start)..(&*self.group, end)).map_err(io_err)? {
            let (k, v) = row.map_err(io_err)?;
            let idx = k.value().1;
            if let std::collections::btree_map::Entry::Vacant(slot) = out.entry(idx) {
                slot.insert(decode(v.value()).map_err(io_err)?);
            }
        }
        Ok(out.into_values().collect())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        self.read_meta("vote")
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let last_purged: Option<LogId> = self.read_meta("purged")?;
        let tail_last = self.tail.lock().expect("tail lock").values().next_back().map(|(e, _)| e.log_id);
        let last = match tail_last {
            Some(l) => Some(l),
            None => {
                let txn = self.storage.log().read().map_err(io_err)?;
                let t = txn.open_table(LOG).map_err(io_err)?;
                let mut it = t.range((&*self.group, 0)..=(&*self.group, u64::MAX)).map_err(io_err)?;
                match it.next_back() {
                    Some(row) => {
                        let (_, v) = row.map_err(io_err)?;
                        let e: Entry = decode(v.value()).map_err(io_err)?;
                        Some(e.log_id)
                    }
                    None => None,
                }
            }
        };
        // Entries a purge has not deleted yet lie below the purged one.
        let last = match (last, last_purged) {
            (Some(l), Some(p)) if l.index < p.index => Some(p),
            (l, p) => l.or(p),
        };
        Ok(LogState { last_purged_log_id: last_purged, last_log_id: last })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        self.write_meta("vote", vote, true).await
    }

    // The committed index is not persisted (openraft's default): after a
    // restart a group re-applies from the applied index in the state file
    // once a leader tells it what is committed, and reads wait for that
    // ([`crate::read_gate`]). Persisting it would cost a state-file write
    // each time the index moves, on every replica.

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<TypeConfig>) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut rows: Vec<(u64, LogId, Vec<u8>)> = Vec::new();
        {
            let mut tail = self.tail.lock().expect("tail lock");
            for e in entries {
                rows.push((e.log_id.index, e.log_id, encode(&e)));
                tail.insert(e.log_id.index, (e, false));
            }
        }
        let bytes: usize = rows.iter().map(|(_, _, b)| b.len()).sum();
        self.appended.fetch_add(bytes as u64, Ordering::Relaxed);
        let group = self.group.clone();
        let tail = self.tail.clone();
        let ids: Vec<(u64, LogId)> = rows.iter().map(|(i, l, _)| (*i, *l)).collect();
        self.storage.log().writer().submit(
            true,
            move |txn| {
                let mut t = txn.open_table(LOG).map_err(|e| e.to_string())?;
                for (idx, _, bytes) in &rows {
                    t.insert((&*group, *idx), bytes.as_slice()).map_err(|e| e.to_string())?;
                }
                Ok(())
            },
            move |r: Result<(), String>| {
                if r.is_ok() {
                    let mut tail = tail.lock().expect("tail lock");
                    for (idx, log_id) in ids {
                        // A truncate and re-append may have replaced it.
                        if let Some((e, durable)) = tail.get_mut(&idx) {
                            *durable |= e.log_id == log_id;
                        }
                    }
                    while tail.len() > TAIL_KEEP && tail.first_key_value().is_some_and(|(_, (_, durable))| *durable) {
                        tail.pop_first();
                    }
                }
                callback.io_completed(r.map_err(io::Error::other));
            },
        );
        Ok(())
    }

    async fn truncate_after(&mut self, last: Option<LogId>) -> Result<(), io::Error> {
        // Entries after `last` go; with no `last`, every entry goes.
        let from = last.map_or(0, |l| l.index + 1);
        self.tail.lock().expect("tail lock").retain(|&i, _| i < from);
        let group = self.group.clone();
        self.storage
            .log()
            .writer()
            .call(true, move |txn| {
                let mut t = txn.open_table(LOG).map_err(|e| e.to_string())?;
                t.retain_in((&*group, from)..=(&*group, u64::MAX), |_, _| false).map_err(|e| e.to_string())?;
                Ok(())
            })
            .await
            .map_err(io_err)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        self.tail.lock().expect("tail lock").retain(|&i, _| i > log_id.index);
        let group = self.group.clone();
        let purged = encode(&log_id);
        let done = self
            .storage
            .log()
            .writer()
            .call(false, move |txn| {
                put_meta(txn, &group, "purged", &purged)?;
                delete_some(txn, &group, log_id.index)
            })
            .await
            .map_err(io_err)?;
        if !done {
            self.purge_later(log_id.index);
        }
        Ok(())
    }
}
