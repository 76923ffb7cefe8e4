//! A PRG's state machine: writes apply in memory and are readable at once;
//! the state file gets them, with the applied index, only when the group
//! flushes; a snapshot carries everything applied to another replica.

use std::sync::Arc;

use crate::kv_machine::{encode_batch, KvMachine, KvSpec};
use crate::state_machine::GroupStateMachine;
use crate::types::{CommittedLeaderId, Entry, LogId, Proposal};
use crate::Storage;
use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, RaftSnapshotBuilder};
use tidal_core::kv::{ReadOp, Reply, WriteOp};

const GROUP: &str = "t:0";

fn entry(index: u64, ops: &[WriteOp]) -> Entry {
    Entry {
        log_id: LogId::new(CommittedLeaderId { term: 1, node_id: 1 }, index),
        payload: EntryPayload::Normal(Proposal { now_ms: 1, body: encode_batch(ops) }),
    }
}

fn get(machine: &KvMachine, storage: &Storage, key: &str) -> Reply {
    machine.read(storage, &ReadOp::Get { key: key.as_bytes().to_vec() }, 1).unwrap().unwrap()
}

fn bulk(v: &str) -> Reply {
    Reply::Bulk(v.as_bytes().to_vec())
}

#[tokio::test]
async fn writes_read_from_memory_reach_the_file_with_their_index_and_travel_in_snapshots() {
    let storage = Storage::in_memory().unwrap();
    let machine = Arc::new(KvMachine::new(GROUP, &KvSpec::whole(1024)));
    let mut sm = GroupStateMachine::new(GROUP, storage.clone(), machine.clone()).unwrap();

    let ops: Vec<WriteOp> = (0..50).map(|i| WriteOp::set(format!("k{i}"), format!("v{i}"))).collect();
    let replies = sm.apply_entries(vec![entry(1, &ops[..25]), entry(2, &ops[25..])]).await.unwrap();
    assert_eq!(replies.len(), 2);
    assert_eq!(get(&machine, &storage, "k7"), bulk("v7"));
    assert_eq!(machine.stored_keys(&storage).unwrap(), 50);
    assert_eq!(sm.applied_state().await.unwrap().0.map(|l| l.index), Some(2));

    // Not flushed yet: a machine reading the same state file sees nothing.
    let fresh = Arc::new(KvMachine::new(GROUP, &KvSpec::whole(1024)));
    let mut fresh_sm = GroupStateMachine::new(GROUP, storage.clone(), fresh.clone()).unwrap();
    assert_eq!(fresh_sm.applied_state().await.unwrap().0, None);
    assert_eq!(get(&fresh, &storage, "k7"), Reply::Nil);

    // Overwrite and delete on top of data that is being flushed.
    sm.flush(false).await.unwrap();
    let del = WriteOp::Del { keys: vec![b"k1".to_vec(), b"k2".to_vec()] };
    sm.apply_entries(vec![entry(3, &[WriteOp::set("k7", "new"), del])]).await.unwrap();
    assert_eq!(get(&machine, &storage, "k7"), bulk("new"));
    assert_eq!(get(&machine, &storage, "k1"), Reply::Nil);
    assert_eq!(machine.stored_keys(&storage).unwrap(), 48);
    sm.flush(true).await.unwrap();

    // After the flush the file holds the data and the index together.
    let fresh = Arc::new(KvMachine::new(GROUP, &KvSpec::whole(1024)));
    let mut fresh_sm = GroupStateMachine::new(GROUP, storage.clone(), fresh.clone()).unwrap();
    assert_eq!(fresh_sm.applied_state().await.unwrap().0.map(|l| l.index), Some(3));
    assert_eq!(get(&fresh, &storage, "k7"), bulk("new"));
    assert_eq!(get(&fresh, &storage, "k2"), Reply::Nil);
    assert_eq!(fresh.stored_keys(&storage).unwrap(), 48);

    // Applied but unflushed writes are in the snapshot too.
    sm.apply_entries(vec![entry(4, &[WriteOp::set("late", "x")])]).await.unwrap();
    let snap = sm.get_snapshot_builder().await.build_snapshot().await.unwrap();
    assert_eq!(snap.meta.last_log_id.map(|l| l.index), Some(4));

    let other = Storage::in_memory().unwrap();
    let other_machine = Arc::new(KvMachine::new(GROUP, &KvSpec::whole(1024)));
    let mut other_sm = GroupStateMachine::new(GROUP, other.clone(), other_machine.clone()).unwrap();
    // Writes the snapshot replaces must not survive it.
    other_sm.apply_entries(vec![entry(1, &[WriteOp::set("stale", "y")])]).await.unwrap();
    other_sm.install_snapshot(&snap.meta, snap.snapshot).await.unwrap();
    assert_eq!(other_sm.applied_state().await.unwrap().0.map(|l| l.index), Some(4));
    assert_eq!(get(&other_machine, &other, "late"), bulk("x"));
    assert_eq!(get(&other_machine, &other, "k7"), bulk("new"));
    assert_eq!(get(&other_machine, &other, "stale"), Reply::Nil);
    assert_eq!(other_machine.stored_keys(&other).unwrap(), 49);
}

#[tokio::test]
async fn flushdb_clears_what_is_in_the_file_and_in_memory() {
    let storage = Storage::in_memory().unwrap();
    let machine = Arc::new(KvMachine::new(GROUP, &KvSpec::whole(1024)));
    let sm = GroupStateMachine::new(GROUP, storage.clone(), machine.clone()).unwrap();
    sm.apply_entries(vec![entry(1, &[WriteOp::set("a", "1"), WriteOp::set("b", "2")])]).await.unwrap();
    sm.flush(false).await.unwrap();
    sm.apply_entries(vec![entry(2, &[WriteOp::set("c", "3"), WriteOp::Flush, WriteOp::set("d", "4")])]).await.unwrap();
    assert_eq!(get(&machine, &storage, "a"), Reply::Nil);
    assert_eq!(get(&machine, &storage, "d"), bulk("4"));
    assert_eq!(machine.stored_keys(&storage).unwrap(), 1);
    sm.flush(false).await.unwrap();
    let fresh = Arc::new(KvMachine::new(GROUP, &KvSpec::whole(1024)));
    assert_eq!(get(&fresh, &storage, "b"), Reply::Nil);
    assert_eq!(get(&fresh, &storage, "c"), Reply::Nil);
    assert_eq!(get(&fresh, &storage, "d"), bulk("4"));
    assert_eq!(fresh.stored_keys(&storage).unwrap(), 1);
}

/// A purge that covers more than one chunk of entries answers at once, with
/// the purged index recorded and the rest of the log readable; the entries
/// below it leave the log over several transactions, and the log's state
/// stays right while they do.
#[tokio::test]
async fn a_large_purge_answers_at_once_and_deletes_in_chunks() {
    use crate::log_store::LogStore;
    use crate::storage::LOG;
    use openraft::storage::{IOFlushed, RaftLogStorage};
    use openraft::RaftLogReader;
    use redb::ReadableTableMetadata;

    let storage = Storage::in_memory().unwrap();
    let mut log = LogStore::new(GROUP, storage.clone());
    let big = WriteOp::set(b"k".to_vec(), vec![7u8; 1 << 20]);
    let entries: Vec<Entry> = (1..=40).map(|i| entry(i, std::slice::from_ref(&big))).collect();
    log.append(entries, IOFlushed::noop()).await.unwrap();
    let appended = log.appended().load(std::sync::atomic::Ordering::Relaxed);
    assert!((40 << 20..41 << 20).contains(&appended), "the store counts the bytes it appends: {appended}");
    // The writer commits in order: this job's commit follows the append's.
    storage.log().writer().call(true, |_| Ok(())).await.unwrap();
    let rows = || {
        let txn = storage.log().read().unwrap();
        txn.open_table(LOG).unwrap().len().unwrap()
    };
    assert_eq!(rows(), 40);

    let at = |i| LogId::new(CommittedLeaderId { term: 1, node_id: 1 }, i);
    log.purge(at(30)).await.unwrap();
    let state = log.get_log_state().await.unwrap();
    assert_eq!((state.last_purged_log_id, state.last_log_id), (Some(at(30)), Some(at(40))));
    assert!(rows() > 10, "one chunk of 2 MiB goes at once, not 30 MiB: {} rows left", rows());
    assert_eq!(log.try_get_log_entries(31..=40).await.unwrap().len(), 10);
    for _ in 0..200 {
        if rows() == 10 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(rows(), 10, "the rest follows in the background");

    // Purged to the end: the last entry is the purged one, whatever is
    // still being deleted.
    log.purge(at(40)).await.unwrap();
    let state = log.get_log_state().await.unwrap();
    assert_eq!(state.last_log_id, Some(at(40)));
}

/// An entry of `group`'s log at `index` carrying `e`.
fn kv_entry(index: u64, e: &crate::kv_entry::KvEntry) -> Entry {
    Entry {
        log_id: LogId::new(CommittedLeaderId { term: 1, node_id: 1 }, index),
        payload: EntryPayload::Normal(Proposal { now_ms: 1, body: crate::kv_entry::encode_entry(e) }),
    }
}

/// A dropped slot's rows leave the state file with nothing more applied,
/// even when the batch that dropped it also flushed; and once the group is
/// purged from the node, its backlog writes nothing back.
#[tokio::test]
async fn a_group_works_off_a_dropped_slot_by_itself_and_writes_nothing_once_purged() {
    use crate::kv_entry::KvEntry;
    use crate::machine::Machine;
    use crate::storage::META;
    use redb::ReadableTableMetadata;
    use tidal_core::ownership::SlotCommand;

    let storage = Storage::in_memory().unwrap();
    let machine = Arc::new(KvMachine::new(GROUP, &KvSpec::whole(1024)));
    let sm = GroupStateMachine::new(GROUP, storage.clone(), machine.clone()).unwrap();
    let task = tokio::spawn(sm.drive_backlog());
    let rows = || {
        let txn = storage.state().read().unwrap();
        txn.open_table(redb::TableDefinition::<&[u8], &[u8]>::new("kvs/t:0")).map_or(0, |t| t.len().unwrap())
    };
    let big = vec![7u8; 4096];
    let mut index = 0;
    let mut next = |e: KvEntry| {
        index += 1;
        kv_entry(index, &e)
    };
    // Two slots of 8 MiB each (hash tags put every key of one in one slot).
    let slot = |tag: &str| tidal_core::slot::slot_of(tag.as_bytes(), 1024);
    let writes: Vec<Entry> = ["{a}", "{b}"]
        .iter()
        .flat_map(|tag| (0..20).map(move |c| (tag, c)))
        .map(|(tag, c)| {
            let ops = (0..100).map(|i| WriteOp::set(format!("{tag}{c}:{i}"), big.clone())).collect::<Vec<_>>();
            next(KvEntry::Writes(ops))
        })
        .collect();
    sm.apply_entries(writes).await.unwrap();
    sm.flush(false).await.unwrap();
    assert_eq!(rows(), 4000);

    let release = |slot: u32, move_id: u64| {
        [
            SlotCommand::BeginExport { move_id, slots: vec![slot] },
            SlotCommand::Fence { move_id, slots: vec![slot] },
            SlotCommand::Release { move_id, slots: vec![slot], to: 1, epoch: 2 },
        ]
    };
    let [begin, fence, drop_a] = release(slot("{a}"), 1);
    sm.apply_entries(vec![next(KvEntry::Slots(begin)), next(KvEntry::Slots(fence))]).await.unwrap();
    // Older than a flush's age: the batch that drops the slot flushes it.
    tokio::time::sleep(crate::state_machine::FLUSH_AGE + std::time::Duration::from_millis(100)).await;
    sm.apply_entries(vec![next(KvEntry::Slots(drop_a))]).await.unwrap();
    for _ in 0..100 {
        if rows() == 2000 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(rows(), 2000, "the slot is gone with nothing more applied");
    assert!(!machine.backlog());

    // The second slot begins its purge; then the group leaves this node.
    let [begin, fence, drop_b] = release(slot("{b}"), 2);
    let batch = vec![next(KvEntry::Slots(begin)), next(KvEntry::Slots(fence)), next(KvEntry::Slots(drop_b))];
    sm.apply_entries(batch).await.unwrap();
    sm.flush(false).await.unwrap();
    assert!(machine.backlog(), "8 MiB take more than one flush");
    sm.purge().await.unwrap();
    tokio::time::sleep(crate::state_machine::PURGE_PAUSE * 3).await;
    let txn = storage.state().read().unwrap();
    let meta = txn.open_table(META).unwrap();
    assert!(meta.get((GROUP, "applied")).unwrap().is_none(), "a purged group's applied index stays gone");
    assert!(sm.flush(false).await.is_err(), "a purged group flushes no more");
    drop(task);
}
