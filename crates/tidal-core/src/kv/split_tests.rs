use super::*;
use crate::kv::{apply, read, KvStore, MemStore};
use proptest::prelude::*;

/// Keys starting with a digit go to that group; others to group 0.
fn group_of(key: &[u8]) -> u8 {
    match key.first() {
        Some(d @ b'0'..=b'9') => d - b'0',
        _ => 0,
    }
}

/// Keys share a slot when their first two bytes match.
fn slot_of(key: &[u8]) -> u32 {
    key.iter().take(2).fold(0, |a, b| a * 256 + u32::from(*b))
}

fn keys(list: &[&str]) -> Vec<Vec<u8>> {
    list.iter().map(|k| k.as_bytes().to_vec()).collect()
}

#[test]
fn single_group_multi_key_stays_single() {
    let op = WriteOp::Del { keys: keys(&["1a", "1b"]) };
    assert_eq!(plan_write(op.clone(), group_of, slot_of), Ok(Plan::Single(1, op)));
    let op = WriteOp::MSetNx { pairs: vec![(b"2a".to_vec(), b"x".to_vec()), (b"2a:b".to_vec(), b"y".to_vec())] };
    assert_eq!(plan_write(op.clone(), group_of, slot_of), Ok(Plan::Single(2, op)));
    let op = ReadOp::Get { key: b"3k".to_vec() };
    assert_eq!(plan_read(op.clone(), group_of, slot_of), Ok(Plan::Single(3, op)));
}

#[test]
fn del_fans_out_and_sums() {
    let op = WriteOp::Del { keys: keys(&["2a", "1a", "2b"]) };
    let Ok(Plan::Fanout { parts, merge: m }) = plan_write(op, group_of, slot_of) else {
        panic!("expected a fanout");
    };
    assert_eq!(
        parts,
        vec![(1, WriteOp::Del { keys: keys(&["1a"]) }), (2, WriteOp::Del { keys: keys(&["2a", "2b"]) }),]
    );
    assert_eq!(m, Merge::SumInts);
    assert_eq!(merge(&m, vec![Reply::Int(1), Reply::Int(2)]), Reply::Int(3));
}

#[test]
fn mset_splits_and_keeps_duplicate_order() {
    let op = WriteOp::MSet {
        pairs: vec![(b"1a".to_vec(), b"x".to_vec()), (b"2a".to_vec(), b"y".to_vec()), (b"1a".to_vec(), b"z".to_vec())],
    };
    let Ok(Plan::Fanout { parts, merge: m }) = plan_write(op, group_of, slot_of) else {
        panic!("expected a fanout");
    };
    assert_eq!(
        parts[0].1,
        WriteOp::MSet { pairs: vec![(b"1a".to_vec(), b"x".to_vec()), (b"1a".to_vec(), b"z".to_vec())] }
    );
    assert_eq!(merge(&m, vec![Reply::Ok, Reply::Ok]), Reply::Ok);
}

#[test]
fn msetnx_across_groups_is_crossslot() {
    let op = WriteOp::MSetNx { pairs: vec![(b"1a".to_vec(), b"x".to_vec()), (b"2a".to_vec(), b"y".to_vec())] };
    let e = plan_write(op, group_of, slot_of).unwrap_err();
    assert_eq!(e.error_code(), Some("CROSSSLOT"));
    let Reply::Error(text) = e else { unreachable!() };
    assert!(text.starts_with("CROSSSLOT Keys in request don't hash to the same slot"));
    assert!(text.contains("hash tag"));
    // One group is not enough: the keys must share a slot.
    let op = WriteOp::MSetNx { pairs: vec![(b"1a".to_vec(), b"x".to_vec()), (b"1b".to_vec(), b"y".to_vec())] };
    assert_eq!(plan_write(op, group_of, slot_of).unwrap_err().error_code(), Some("CROSSSLOT"));
}

#[test]
fn rename_across_groups_is_a_move() {
    let op = WriteOp::Rename { from: b"1a".to_vec(), to: b"2b".to_vec(), nx: true };
    assert_eq!(
        plan_write(op, group_of, slot_of),
        Ok(Plan::Move { from_group: 1, from: b"1a".to_vec(), to_group: 2, to: b"2b".to_vec(), nx: true })
    );
    let op = WriteOp::Rename { from: b"1a".to_vec(), to: b"1a:x".to_vec(), nx: false };
    assert_eq!(plan_write(op.clone(), group_of, slot_of), Ok(Plan::Single(1, op)));
    // Across slots of one group it is a copy and a delete too.
    let op = WriteOp::Rename { from: b"1a".to_vec(), to: b"1b".to_vec(), nx: false };
    assert!(matches!(plan_write(op, group_of, slot_of), Ok(Plan::Move { from_group: 1, to_group: 1, .. })));
}

#[test]
fn keyless_ops_broadcast() {
    assert_eq!(
        plan_write(WriteOp::Flush, group_of, slot_of),
        Ok(Plan::Broadcast { op: WriteOp::Flush, merge: Merge::Ok })
    );
    assert_eq!(
        plan_read(ReadOp::DbSize, group_of, slot_of),
        Ok(Plan::Broadcast { op: ReadOp::DbSize, merge: Merge::SumInts })
    );
    let keys_op = ReadOp::Keys { pattern: b"*".to_vec() };
    let Ok(Plan::Broadcast { merge: m, .. }) = plan_read(keys_op, group_of, slot_of) else { panic!() };
    assert_eq!(
        merge(&m, vec![Reply::Array(vec![Reply::bulk("a")]), Reply::Array(vec![Reply::bulk("b")])]),
        Reply::Array(vec![Reply::bulk("a"), Reply::bulk("b")])
    );
    let scan = ReadOp::Scan { slots: 0..16, after: None, count: 10, pattern: None, kind: None };
    assert!(plan_read(scan, group_of, slot_of).is_err());
}

#[test]
fn merge_first_error_wins_and_shapes_are_checked() {
    let e1 = Reply::err("first");
    let e2 = Reply::err("second");
    assert_eq!(merge(&Merge::SumInts, vec![Reply::Int(1), e1.clone(), e2]), e1);
    assert!(merge(&Merge::SumInts, vec![Reply::Int(1), Reply::Ok]).is_error());
    assert!(merge(&Merge::Ok, vec![Reply::Ok, Reply::Int(1)]).is_error());
    let m = Merge::MGet { positions: vec![vec![0], vec![1]] };
    assert!(merge(&m, vec![Reply::Array(vec![Reply::Nil])]).is_error());
    assert!(merge(&m, vec![Reply::Array(vec![]), Reply::Array(vec![Reply::Nil])]).is_error());
}

proptest! {
    /// Splitting an MGET over groups, answering each part from one store,
    /// and merging gives exactly the unsplit answer.
    #[test]
    fn split_mget_equals_unsplit(
        present in proptest::collection::btree_map("[0-3][a-c]", "[a-z]{1,3}", 0..8),
        wanted in proptest::collection::vec("[0-3][a-c]", 1..10),
    ) {
        let mut store = MemStore::new();
        let pairs: Vec<_> = present.iter().map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec())).collect();
        if !pairs.is_empty() {
            apply(&WriteOp::MSet { pairs }, 0, &mut store).unwrap();
        }
        let op = ReadOp::MGet { keys: wanted.iter().map(|k| k.as_bytes().to_vec()).collect() };
        let whole = read(&op, 0, &store).unwrap();
        let merged = match plan_read(op, group_of, slot_of).unwrap() {
            Plan::Single(_, op) => read(&op, 0, &store).unwrap(),
            Plan::Fanout { parts, merge: m } => {
                let replies = parts.iter().map(|(_, op)| read(op, 0, &store).unwrap()).collect();
                merge(&m, replies)
            }
            other => panic!("unexpected plan {other:?}"),
        };
        prop_assert_eq!(merged, whole);
    }

    /// Same for EXISTS with duplicates: the per-group counts add up.
    #[test]
    fn split_exists_equals_unsplit(
        present in proptest::collection::btree_set("[0-3][a-c]", 0..8),
        wanted in proptest::collection::vec("[0-3][a-c]", 1..10),
    ) {
        let mut store = MemStore::new();
        for k in &present {
            store.put(k.as_bytes(), &crate::kv::Record::new("v")).unwrap();
        }
        let op = ReadOp::Exists { keys: wanted.iter().map(|k| k.as_bytes().to_vec()).collect() };
        let whole = read(&op, 0, &store).unwrap();
        let merged = match plan_read(op, group_of, slot_of).unwrap() {
            Plan::Single(_, op) => read(&op, 0, &store).unwrap(),
            Plan::Fanout { parts, merge: m } => merge(&m, parts.iter().map(|(_, op)| read(op, 0, &store).unwrap()).collect()),
            other => panic!("unexpected plan {other:?}"),
        };
        prop_assert_eq!(merged, whole);
    }
}
