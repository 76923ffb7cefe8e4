// Genesis slots are lists of ranges; a list of one range is what is meant.
#![allow(clippy::single_range_in_vec_init)]

use tidal_core::kv::{ExpireAt, Expiry, Reply, ScanPage, SetCond, TxOp, Watch};

use super::*;
use crate::kv_entry::encode_entry;

const SLOTS: u32 = 8;

/// A machine and the log index of its last applied entry.
struct Group {
    m: KvMachine,
    index: u64,
}

impl Group {
    fn new(name: &str, genesis: Range<u32>) -> Self {
        Self { m: KvMachine::new(name, &KvSpec { slots: SLOTS, genesis: vec![genesis] }), index: 0 }
    }

    fn apply(&mut self, s: &Storage, e: &KvEntry) -> Vec<u8> {
        self.index += 1;
        self.m.apply(s.state(), self.index, 1, &encode_entry(e)).unwrap()
    }

    fn write(&mut self, s: &Storage, ops: Vec<WriteOp>) -> Vec<Outcome> {
        decode(&self.apply(s, &KvEntry::Writes(ops))).unwrap()
    }

    /// Apply `ops` in an entry stamped with the time `now_ms`.
    fn write_at(&mut self, s: &Storage, now_ms: u64, ops: Vec<WriteOp>) -> Vec<Outcome> {
        self.index += 1;
        decode(&self.m.apply(s.state(), self.index, now_ms, &encode_entry(&KvEntry::Writes(ops))).unwrap()).unwrap()
    }

    fn slots(&mut self, s: &Storage, cmd: SlotCommand) -> ControlOutcome {
        decode(&self.apply(s, &KvEntry::Slots(cmd))).unwrap()
    }

    fn get(&self, s: &Storage, key: &str) -> Outcome {
        self.m.read(s, &ReadOp::Get { key: key.as_bytes().to_vec() }, 1).unwrap()
    }

    fn dbsize(&self, s: &Storage) -> Reply {
        self.m.read(s, &ReadOp::DbSize, 1).unwrap().unwrap()
    }

    async fn flush(&self, s: &Storage) {
        let job = self.m.freeze();
        s.state().writer().call(true, job).await.unwrap();
        self.m.flushed(true);
    }
}

fn key_in(slot: u32, n: usize) -> Vec<String> {
    (0..).map(|i| format!("k{i}")).filter(|k| slot_of(k.as_bytes(), SLOTS) == slot).take(n).collect()
}

fn set(k: &str, v: &str) -> WriteOp {
    WriteOp::set(k.as_bytes().to_vec(), v.as_bytes().to_vec())
}

#[tokio::test]
async fn writes_to_slots_held_elsewhere_are_refused_unapplied() {
    let s = Storage::in_memory().unwrap();
    let mut g = Group::new("t:0", 0..4);
    let mine = &key_in(1, 1)[0];
    let theirs = &key_in(6, 1)[0];
    let out = g.write(&s, vec![set(mine, "a"), set(theirs, "b")]);
    assert_eq!(out[0], Ok(Reply::Ok));
    assert_eq!(out[1], Err(Refusal::Moved { slot: 6, to: None, epoch: 0 }));
    assert_eq!(g.get(&s, theirs), Err(Refusal::Moved { slot: 6, to: None, epoch: 0 }));
    assert_eq!(g.dbsize(&s), Reply::Int(1));
}

/// A whole slot move at the level of the two state machines: copy in
/// chunks while writes go on, catch up, fence, final delta, release,
/// adopt. The target ends with exactly the source's rows.
#[tokio::test]
async fn a_slot_moves_between_two_machines_with_writes_during_the_copy() {
    let s = Storage::in_memory().unwrap();
    let mut src = Group::new("t:0", 0..8);
    let mut dst = Group::new("t:1", 0..0);
    let moving = key_in(3, 40);
    let staying = key_in(4, 5);
    for k in moving.iter().chain(&staying) {
        src.write(&s, vec![set(k, "v0")]);
    }
    src.flush(&s).await;
    let slots = vec![3];
    let begin = src.slots(&s, SlotCommand::BeginExport { move_id: 9, slots: slots.clone() }).unwrap();
    dst.slots(&s, SlotCommand::BeginImport { move_id: 9, slots: slots.clone() }).unwrap();

    // Copy in small chunks; the source keeps taking writes meanwhile.
    let mut cursor: Option<Vec<u8>> = None;
    let mut chunks = 0;
    loop {
        let (rows, done) = src.m.export_rows(&s, 9, cursor.as_deref(), 100).unwrap();
        chunks += 1;
        cursor = rows.last().map(|r| r.key.clone()).or(cursor);
        dst.apply(&s, &KvEntry::Rows { move_id: 9, rows });
        src.write(&s, vec![set(&moving[chunks], "v1")]);
        if done {
            break;
        }
    }
    assert!(chunks > 3, "100-byte chunks of 40 rows: {chunks}");
    src.write(&s, vec![WriteOp::Del { keys: vec![moving[0].as_bytes().to_vec()] }]);
    // The import is invisible on the target until adopted.
    assert_eq!(dst.dbsize(&s), Reply::Int(0));
    assert_eq!(dst.get(&s, &moving[5]), Err(Refusal::Fenced { slot: 3, move_id: 9 }));

    let (rows, at) = src.m.delta(&s, 9, begin).unwrap();
    assert!(rows.iter().any(|r| r.record.is_none()), "the delete travels as a row without a record");
    dst.apply(&s, &KvEntry::Rows { move_id: 9, rows });

    src.slots(&s, SlotCommand::Fence { move_id: 9, slots: slots.clone() }).unwrap();
    assert_eq!(src.write(&s, vec![set(&moving[1], "late")])[0], Err(Refusal::Fenced { slot: 3, move_id: 9 }));
    assert_eq!(src.get(&s, &moving[1]), Ok(Reply::Bulk(b"v1".to_vec())), "fenced slots still serve reads");
    src.write(&s, vec![set(&staying[0], "other slots go on")]);
    let (rows, _) = src.m.delta(&s, 9, at).unwrap();
    assert!(rows.is_empty(), "no change after the last pull: {rows:?}");
    dst.apply(&s, &KvEntry::Rows { move_id: 9, rows });

    src.slots(&s, SlotCommand::Release { move_id: 9, slots: slots.clone(), to: 1, epoch: 5 }).unwrap();
    dst.slots(&s, SlotCommand::Adopt { move_id: 9, slots }).unwrap();
    assert_eq!(src.get(&s, &moving[2]), Err(Refusal::Moved { slot: 3, to: Some(1), epoch: 5 }));
    assert_eq!(dst.get(&s, &moving[0]), Ok(Reply::Nil));
    for (i, k) in moving.iter().enumerate().skip(1) {
        let want = if i <= chunks { "v1" } else { "v0" };
        assert_eq!(dst.get(&s, k), Ok(Reply::Bulk(want.as_bytes().to_vec())), "{k}");
    }
    assert_eq!(dst.dbsize(&s), Reply::Int(39));
    assert_eq!(src.dbsize(&s), Reply::Int(5));
    // The drop reaches the table with the next flush, and survives a reopen.
    src.flush(&s).await;
    dst.flush(&s).await;
    let reopened = KvMachine::open("t:0", Some(KvSpec::whole(SLOTS)), &s).await.unwrap();
    assert_eq!(reopened.stored_keys(&s).unwrap(), 5);
    assert_eq!(reopened.ownership().state(3), Some(SlotState::Gone { to: 1, epoch: 5 }));
}

/// A source `t:0` with 10 keys in slot 2, exporting it (move 1) to an
/// empty target `t:1` that imports it, and the slot's rows as exported.
fn slot_2_moving(s: &Storage) -> (Group, Group, Vec<Row>) {
    let mut src = Group::new("t:0", 0..8);
    let mut dst = Group::new("t:1", 0..0);
    for k in key_in(2, 10) {
        src.write(s, vec![set(&k, "v")]);
    }
    src.slots(s, SlotCommand::BeginExport { move_id: 1, slots: vec![2] }).unwrap();
    dst.slots(s, SlotCommand::BeginImport { move_id: 1, slots: vec![2] }).unwrap();
    let (rows, done) = src.m.export_rows(s, 1, None, usize::MAX).unwrap();
    assert!(done);
    assert_eq!(rows.len(), 10);
    (src, dst, rows)
}

#[tokio::test]
async fn a_rolled_back_import_leaves_nothing_behind() {
    let s = Storage::in_memory().unwrap();
    let (mut src, mut dst, rows) = slot_2_moving(&s);
    dst.apply(&s, &KvEntry::Rows { move_id: 1, rows: rows.clone() });
    dst.flush(&s).await;
    src.slots(&s, SlotCommand::Unfence { move_id: 1, slots: vec![2] }).unwrap();
    dst.slots(&s, SlotCommand::DropImport { move_id: 1, slots: vec![2] }).unwrap();
    dst.flush(&s).await;
    assert_eq!(dst.m.stored_keys(&s).unwrap(), 0);
    assert!(src.m.ownership().settled());
    // Rows for a move that is not importing are refused whole.
    let refused: ControlOutcome = decode(&dst.apply(&s, &KvEntry::Rows { move_id: 1, rows })).unwrap();
    assert!(refused.is_err());
    assert_eq!(dst.m.stored_keys(&s).unwrap(), 0);
}

#[tokio::test]
async fn dbsize_counts_no_importing_row_in_layers_or_table() {
    let s = Storage::in_memory().unwrap();
    let (mut src, mut dst, rows) = slot_2_moving(&s);
    dst.apply(&s, &KvEntry::Rows { move_id: 1, rows: rows[..4].to_vec() });
    // The copy in the layers, then in the table, then in both.
    assert_eq!(dst.dbsize(&s), Reply::Int(0));
    dst.flush(&s).await;
    assert_eq!(dst.dbsize(&s), Reply::Int(0));
    dst.apply(&s, &KvEntry::Rows { move_id: 1, rows: rows[4..].to_vec() });
    assert_eq!(dst.dbsize(&s), Reply::Int(0));
    assert_eq!(src.dbsize(&s), Reply::Int(10));
    // Once the slot is the target's, every row counts there, and none at
    // the source.
    src.slots(&s, SlotCommand::Fence { move_id: 1, slots: vec![2] }).unwrap();
    src.slots(&s, SlotCommand::Release { move_id: 1, slots: vec![2], to: 1, epoch: 2 }).unwrap();
    dst.slots(&s, SlotCommand::Adopt { move_id: 1, slots: vec![2] }).unwrap();
    assert_eq!(dst.dbsize(&s), Reply::Int(10));
    assert_eq!(src.dbsize(&s), Reply::Int(0));
}

#[tokio::test]
async fn flushdb_waits_while_a_slot_moves() {
    let s = Storage::in_memory().unwrap();
    let mut g = Group::new("t:0", 0..8);
    g.write(&s, vec![set("a", "1")]);
    g.slots(&s, SlotCommand::BeginExport { move_id: 2, slots: vec![1] }).unwrap();
    assert!(matches!(g.write(&s, vec![WriteOp::Flush])[0], Err(Refusal::Fenced { move_id: 2, .. })));
    g.slots(&s, SlotCommand::Unfence { move_id: 2, slots: vec![1] }).unwrap();
    assert_eq!(g.write(&s, vec![WriteOp::Flush])[0], Ok(Reply::Ok));
    assert_eq!(g.dbsize(&s), Reply::Int(0));
}

#[tokio::test]
async fn a_restarted_replica_cannot_answer_for_changes_it_did_not_see() {
    let s = Storage::in_memory().unwrap();
    let mut g = Group::new("t:0", 0..8);
    let begin = g.slots(&s, SlotCommand::BeginExport { move_id: 4, slots: vec![0] }).unwrap();
    g.write(&s, vec![set(&key_in(0, 1)[0], "x")]);
    assert_eq!(g.m.delta(&s, 4, begin).unwrap().0.len(), 1);
    g.flush(&s).await;
    // Pretend the flush recorded the applied index, as the group does.
    let applied =
        encode(&Some(LogId { leader_id: crate::types::CommittedLeaderId { term: 1, node_id: 1 }, index: g.index }));
    s.state().writer().call(true, move |txn| put_meta(txn, "t:0", "applied", &applied)).await.unwrap();
    g.m.reload(s.state()).unwrap();
    assert!(matches!(g.m.delta(&s, 4, begin), Err(DeltaError::Lost { .. })));
    assert!(g.m.delta(&s, 4, g.index).unwrap().0.is_empty());
    assert!(matches!(g.m.delta(&s, 5, g.index), Err(DeltaError::NotExporting(5))));
}

/// Every piece of `m`'s snapshot as the state file holds it, `max` bytes a piece.
fn pieces(m: &KvMachine, s: &Storage, max: usize) -> Vec<Vec<u8>> {
    let mut p = m.export(&s.state().read().unwrap()).unwrap();
    std::iter::from_fn(|| p.next_piece(max).unwrap()).collect()
}

/// Stage `pieces` on `s` in one transaction each, as they arrive over the network.
async fn stage_all(m: &Arc<KvMachine>, s: &Storage, pieces: Vec<Vec<u8>>) {
    for (i, p) in pieces.into_iter().enumerate() {
        let job = m.stage(i == 0, &p).unwrap();
        s.state().writer().call(false, job).await.unwrap();
    }
}

#[tokio::test]
async fn snapshots_stream_in_pieces_and_carry_the_ownership() {
    let s = Storage::in_memory().unwrap();
    let mut g = Group::new("t:0", 0..8);
    let keys: Vec<String> = (0..50).map(|i| format!("key-{i}")).collect();
    g.write(&s, keys.iter().map(|k| set(k, "0123456789")).collect());
    g.slots(&s, SlotCommand::BeginExport { move_id: 1, slots: vec![5] }).unwrap();
    g.flush(&s).await;
    // About 20 bytes a row: pieces of 100 bytes hold a handful each.
    let cut = pieces(&g.m, &s, 100);
    assert!(cut.len() >= 8, "{} pieces", cut.len());

    let other = Storage::in_memory().unwrap();
    let spec = KvSpec { slots: SLOTS, genesis: vec![] };
    let h = Arc::new(KvMachine::new("t:0", &spec));
    // A transfer cut off after two pieces is dropped; a later one stages
    // over what another cut-off transfer left.
    stage_all(&h, &other, cut[..2].to_vec()).await;
    other.state().writer().call(false, h.unstage()).await.unwrap();
    assert!(h.check_staged(other.state()).is_err(), "nothing staged after unstage");
    {
        let txn = other.state().read().unwrap();
        assert!(matches!(txn.open_table(Def::new("kvs-in/t:0")), Err(TableError::TableDoesNotExist(_))));
    }
    stage_all(&h, &other, cut[..3].to_vec()).await;
    stage_all(&h, &other, cut.clone()).await;
    h.check_staged(other.state()).unwrap();
    let m = h.clone();
    other.state().writer().call(true, move |txn| m.import_staged(txn)).await.unwrap();
    let h = KvMachine::open("t:0", Some(spec), &other).await.unwrap();
    assert_eq!(h.ownership(), g.m.ownership());
    assert_eq!(h.stored_keys(&other).unwrap(), 50);
    let txn = other.state().read().unwrap();
    assert!(matches!(txn.open_table(Def::new("kvs-in/t:0")), Err(TableError::TableDoesNotExist(_))));
}

#[tokio::test]
async fn a_snapshot_piece_of_another_format_or_shape_is_refused() {
    let s = Storage::in_memory().unwrap();
    let h = KvMachine::new("t:0", &KvSpec { slots: SLOTS, genesis: vec![] });
    let old = encode_versioned(2, &(Vec::<u8>::new(), 1u8));
    let err = h.stage(true, &old).err().expect("refused");
    assert!(err.contains("format 2"), "{err}");
    let wide = KvPiece { ownership: Some(Ownership::genesis(16, &[0..16])), rows: vec![] };
    let err = h.stage(true, &encode_versioned(PIECE_VERSION, &wide)).err().expect("refused");
    assert!(err.contains("16 slots"), "{err}");
    // Nothing was staged: there is nothing to install.
    let err = h.check_staged(s.state()).unwrap_err();
    assert!(err.contains("no ownership"), "{err}");
}

#[tokio::test]
async fn rows_in_the_layout_before_slots_are_moved_into_the_slot_first_table() {
    let s = Storage::in_memory().unwrap();
    s.state()
        .writer()
        .call(true, |txn| {
            let mut t = txn.open_table(Def::new("kv/t:0")).map_err(|e| e.to_string())?;
            for k in ["a", "b", "c"] {
                t.insert(k.as_bytes(), Record::new(k).encode().as_slice()).map_err(|e| e.to_string())?;
            }
            Ok(())
        })
        .await
        .unwrap();
    assert!(KvMachine::open("t:0", None, &s).await.is_err(), "no shape recorded and none given");
    let m = KvMachine::open("t:0", Some(KvSpec::whole(SLOTS)), &s).await.unwrap();
    assert_eq!(m.stored_keys(&s).unwrap(), 3);
    assert_eq!(m.read(&s, &ReadOp::Get { key: b"b".to_vec() }, 1).unwrap(), Ok(Reply::Bulk(b"b".to_vec())));
    let txn = s.state().read().unwrap();
    assert!(matches!(txn.open_table(Def::new("kv/t:0")), Err(TableError::TableDoesNotExist(_))));
}

#[test]
fn an_unreadable_entry_stops_the_group() {
    let s = Storage::in_memory().unwrap();
    let g = Group::new("t:0", 0..8);
    let err = g.m.apply(s.state(), 7, 1, &[0xFF, 0x00, 1, 0xEE]).unwrap_err();
    assert!(err.contains("entry 7"), "{err}");
}

/// Ownership records of format 1 (before ownership kept the last move of
/// each slot) still load, with the move under way intact.
#[tokio::test]
async fn ownership_records_of_format_1_still_load() {
    // Format 1 is postcard of (slots, states): a tuple encodes as the struct did.
    let states = BTreeMap::from([(4u32, SlotState::Owned { exporting: None }), (5, SlotState::Fenced { move_id: 9 })]);
    let record = encode_versioned(1, &(SLOTS, states.clone()));
    let s = Storage::in_memory().unwrap();
    let g = Group::new("t:0", 0..8);
    s.state().writer().call(true, move |txn| put_meta(txn, "t:0", OWNERSHIP, &record)).await.unwrap();
    g.m.reload(s.state()).unwrap();
    assert_eq!(g.m.ownership().states().collect::<BTreeMap<_, _>>(), states);
    assert!(g.m.ownership().check_read(5).is_ok());

    // Move 9 is still under way: an older move's command is stale.
    let mut o = g.m.ownership();
    assert!(o.apply(&SlotCommand::Unfence { move_id: 8, slots: vec![5] }).is_err());
    assert!(o.apply(&SlotCommand::Unfence { move_id: 9, slots: vec![5] }).is_ok());
}

fn scan(g: &Group, s: &Storage, slots: Range<u32>, after: Option<&str>, count: usize) -> Outcome {
    let op = ReadOp::Scan { slots, after: after.map(|a| a.as_bytes().to_vec()), count, pattern: None, kind: None };
    g.m.read(s, &op, 1).unwrap()
}

/// A SCAN page covers the run of the asked slots the PRG serves from the
/// first, in slot order, and says where it stopped; a PRG that does not
/// serve the first slot says where it went.
#[tokio::test]
async fn scan_pages_walk_served_slots_in_order_and_stop_where_a_slot_is_not_served() {
    let s = Storage::in_memory().unwrap();
    let mut g = Group::new("t:0", 0..4);
    for slot in 0..4 {
        for k in key_in(slot, 3) {
            g.write(&s, vec![set(&k, "v")]);
        }
    }
    // Slot 2 leaves: the page over 0..4 stops at it.
    g.slots(&s, SlotCommand::BeginExport { move_id: 1, slots: vec![2] }).unwrap();
    g.slots(&s, SlotCommand::Fence { move_id: 1, slots: vec![2] }).unwrap();
    g.slots(&s, SlotCommand::Release { move_id: 1, slots: vec![2], to: 1, epoch: 2 }).unwrap();
    let page = ScanPage::from_reply(&scan(&g, &s, 0..4, None, 100).unwrap()).unwrap();
    let want: Vec<Vec<u8>> = [key_in(0, 3), key_in(1, 3)].concat().into_iter().map(String::into_bytes).collect();
    let mut got = page.keys.clone();
    got.sort();
    let mut sorted = want.clone();
    sorted.sort();
    assert_eq!(got, sorted);
    assert_eq!((page.next_after, page.next_slot), (None, 2));
    // Slot order first: the keys of slot 0 come before those of slot 1.
    assert!(page.keys[..3].iter().all(|k| slot_of(k, SLOTS) == 0), "{:?}", page.keys);
    // A full page resumes after its last key, within the first slot.
    let p = ScanPage::from_reply(&scan(&g, &s, 0..2, None, 2).unwrap()).unwrap();
    let last = p.next_after.clone().unwrap();
    assert_eq!(slot_of(&last, SLOTS), 0);
    let rest =
        ScanPage::from_reply(&scan(&g, &s, 0..2, Some(std::str::from_utf8(&last).unwrap()), 100).unwrap()).unwrap();
    assert_eq!(p.keys.len() + rest.keys.len(), 6);
    assert_eq!(rest.next_slot, 2);
    // The moved slot itself: refused, with where it went.
    assert_eq!(scan(&g, &s, 2..4, None, 10), Err(Refusal::Moved { slot: 2, to: Some(1), epoch: 2 }));
    // Slot 3 is still served.
    let p3 = ScanPage::from_reply(&scan(&g, &s, 3..4, None, 10).unwrap()).unwrap();
    assert_eq!(p3.keys.len(), 3);
}

#[tokio::test]
async fn a_replica_estimates_the_bytes_it_stores_flushed_or_not() {
    let s = Storage::in_memory().unwrap();
    let mut g = Group::new("t:0", 0..SLOTS);
    assert_eq!(g.m.approx_bytes(&s).unwrap(), 0);
    let value = "v".repeat(1000);
    let keys: Vec<String> = (0..200).map(|i| format!("key{i:03}")).collect();
    g.write(&s, keys.iter().map(|k| set(k, &value)).collect());
    let unflushed = g.m.approx_bytes(&s).unwrap();
    g.flush(&s).await;
    let flushed = g.m.approx_bytes(&s).unwrap();
    // 200 rows of a 1000-byte value, a short key and a record's framing.
    for estimate in [unflushed, flushed] {
        assert!((200 * 1000..=200 * 1100).contains(&estimate), "{estimate}");
    }
}

mod pieces_from_peers {
    use proptest::prelude::*;

    use super::*;

    fn machine() -> KvMachine {
        KvMachine::new("t:0", &KvSpec { slots: SLOTS, genesis: vec![] })
    }

    fn piece() -> impl Strategy<Value = KvPiece> {
        let bytes = || proptest::collection::vec(any::<u8>(), 0..24);
        let rows = proptest::collection::vec((bytes(), bytes()), 0..8)
            .prop_map(|rs| rs.into_iter().map(|(key, value)| PieceRow { key, value }).collect());
        (any::<bool>(), rows).prop_map(|(first, rows)| KvPiece {
            ownership: first.then(|| Ownership::genesis(SLOTS, &[0..SLOTS])),
            rows,
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Whatever a peer sends as a snapshot piece, bare or behind the
        /// piece format's header, is staged or refused; never a panic.
        #[test]
        fn arbitrary_pieces_are_staged_or_refused(bytes in proptest::collection::vec(any::<u8>(), 0..256), first in any::<bool>()) {
            let m = machine();
            let _ = m.stage(first, &bytes);
            let mut versioned = vec![0xFF, 0x00, PIECE_VERSION];
            versioned.extend_from_slice(&bytes);
            let _ = m.stage(first, &versioned);
        }

        /// A piece reads back as written; one cut short is refused.
        #[test]
        fn pieces_round_trip_and_cut_ones_are_refused(p in piece(), cut in any::<prop::sample::Index>()) {
            let whole = encode_versioned(PIECE_VERSION, &p);
            prop_assert!(machine().stage(true, &whole).is_ok());
            let back: KvPiece = decode(split_version(&whole).1).unwrap();
            prop_assert_eq!(encode_versioned(PIECE_VERSION, &back), whole.clone());
            let cut = 1 + cut.index(whole.len() - 1);
            prop_assert!(machine().stage(true, &whole[..cut]).is_err());
        }
    }
}

fn versions(g: &Group, s: &Storage, keys: &[&str]) -> (String, Vec<u64>) {
    let op = ReadOp::Versions { keys: keys.iter().map(|k| k.as_bytes().to_vec()).collect() };
    match g.m.read(s, &op, 1).unwrap().unwrap() {
        Reply::Array(parts) => match parts.as_slice() {
            [Reply::Bulk(prg), Reply::Array(v)] => (
                String::from_utf8(prg.clone()).unwrap(),
                v.iter().map(|r| if let Reply::Int(n) = r { *n as u64 } else { panic!("{r:?}") }).collect(),
            ),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

fn exec(g: &mut Group, s: &Storage, watch: Option<Watch>, ops: Vec<TxOp>) -> Outcome {
    g.write(s, vec![WriteOp::Exec { watch, ops }]).remove(0)
}

/// Every stored record carries the index of the entry that wrote it (rows
/// a move brings in get the importing PRG's), and a flush keeps it.
#[tokio::test]
async fn records_carry_the_index_that_last_wrote_them() {
    let s = Storage::in_memory().unwrap();
    let mut g = Group::new("t:0", 0..8);
    let k = &key_in(2, 2);
    g.write(&s, vec![set(&k[0], "a")]);
    g.write(&s, vec![set(&k[1], "b")]);
    assert_eq!(versions(&g, &s, &[&k[0], &k[1], "absent"]), ("t:0".into(), vec![1, 2, 0]));
    g.write(
        &s,
        vec![WriteOp::Expire { key: k[0].as_bytes().to_vec(), at: ExpireAt::RelMs(60_000), cond: Default::default() }],
    );
    g.flush(&s).await;
    assert_eq!(versions(&g, &s, &[&k[0], &k[1]]).1, vec![3, 2]);

    let mut dst = Group::new("t:1", 0..0);
    g.slots(&s, SlotCommand::BeginExport { move_id: 4, slots: vec![2] }).unwrap();
    dst.slots(&s, SlotCommand::BeginImport { move_id: 4, slots: vec![2] }).unwrap();
    let (rows, _) = g.m.export_rows(&s, 4, None, 1 << 20).unwrap();
    dst.apply(&s, &KvEntry::Rows { move_id: 4, rows });
    dst.slots(&s, SlotCommand::Adopt { move_id: 4, slots: vec![2] }).unwrap();
    assert_eq!(versions(&dst, &s, &[&k[0], &k[1]]), ("t:1".into(), vec![2, 2]));
}

/// EXEC applies all of a transaction at once, reads seeing the writes
/// before them; a watched key whose version changed (or versions read by
/// another PRG) runs nothing; a key of a slot not served refuses it whole.
#[tokio::test]
async fn a_transaction_is_all_or_nothing() {
    let s = Storage::in_memory().unwrap();
    let mut g = Group::new("t:0", 0..4);
    let k = &key_in(1, 2);
    let b = |x: &str| x.as_bytes().to_vec();
    let ops = vec![
        TxOp::Write(set(&k[0], "1")),
        TxOp::Write(WriteOp::IncrBy { key: b(&k[0]), delta: 9 }),
        TxOp::Read(ReadOp::Get { key: b(&k[0]) }),
    ];
    let out = exec(&mut g, &s, None, ops);
    assert_eq!(out, Ok(Reply::Array(vec![Reply::Ok, Reply::Int(10), Reply::Bulk(b"10".to_vec())])));

    let (prg, v) = versions(&g, &s, &[&k[0]]);
    let watch = |prg: &str, v: u64| Some(Watch { prg: prg.into(), keys: vec![(b(&k[0]), v)] });
    g.write(&s, vec![set(&k[0], "10")]);
    assert_eq!(exec(&mut g, &s, watch(&prg, v[0]), vec![TxOp::Write(set(&k[1], "x"))]), Ok(Reply::NilArray));
    assert_eq!(g.get(&s, &k[1]), Ok(Reply::Nil), "a failed watch runs nothing");
    let (_, now) = versions(&g, &s, &[&k[0]]);
    assert_eq!(exec(&mut g, &s, watch("t:9", now[0]), vec![TxOp::Write(set(&k[1], "x"))]), Ok(Reply::NilArray));
    let ok = Ok(Reply::Array(vec![Reply::Ok]));
    assert_eq!(exec(&mut g, &s, watch(&prg, now[0]), vec![TxOp::Write(set(&k[1], "x"))]), ok);

    let theirs = &key_in(6, 1)[0];
    let out = exec(&mut g, &s, None, vec![TxOp::Write(set(&k[1], "y")), TxOp::Write(set(theirs, "z"))]);
    assert_eq!(out, Err(Refusal::Moved { slot: 6, to: None, epoch: 0 }));
    assert_eq!(g.get(&s, &k[1]), Ok(Reply::Bulk(b"x".to_vec())), "a refused transaction runs nothing");
}

fn hset(key: &str, fields: std::ops::Range<usize>) -> WriteOp {
    let pairs = fields.map(|i| (format!("field-{i}").into_bytes(), format!("value-{i}").into_bytes())).collect();
    WriteOp::Hash { key: key.as_bytes().to_vec(), op: tidal_core::kv::HashWrite::Set { pairs, ok: false } }
}

fn hlen(g: &Group, s: &Storage, key: &str) -> Outcome {
    g.m.read(s, &ReadOp::Hash { key: key.as_bytes().to_vec(), op: tidal_core::kv::HashRead::Len }, 1).unwrap()
}

fn element_rows_stored(s: &Storage, table: &str) -> u64 {
    let txn = s.state().read().unwrap();
    let Table { elements, .. } = open_table(&txn, table, Purging::default()).unwrap();
    elements.map_or(0, |t| t.len().unwrap())
}

fn element_slots(g: &Group) -> BTreeSet<u32> {
    g.m.inner.read().unwrap().element_slots.clone()
}

/// A write that replaces a key reads what it held only in slots that
/// hold element rows; in those it takes a collection's rows with it,
/// whether the rows are in the layers or the table, after a restart too.
#[tokio::test]
async fn a_string_over_a_large_collection_takes_its_rows_in_the_slots_known_to_hold_some() {
    let s = Storage::in_memory().unwrap();
    let mut g = Group::new("t:0", 0..8);
    let h = key_in(3, 1)[0].clone();
    g.write(&s, vec![hset(&h, 0..200), set(&key_in(5, 1)[0], "v"), hset(&key_in(6, 1)[0], 0..2)]);
    assert_eq!(element_slots(&g), BTreeSet::from([3]), "a packed hash has no element rows");
    g.write(&s, vec![set(&h, "s")]);
    g.flush(&s).await;
    assert_eq!(element_rows_stored(&s, "kvs/t:0"), 0);

    g.write(&s, vec![WriteOp::Del { keys: vec![h.as_bytes().to_vec()] }, hset(&h, 0..200)]);
    g.flush(&s).await;
    assert_eq!(element_rows_stored(&s, "kvs/t:0"), 200);
    g.m.reload(s.state()).unwrap();
    assert_eq!(element_slots(&g), BTreeSet::from([3]), "a start finds the slots in the table");
    g.write(&s, vec![set(&h, "s")]);
    g.flush(&s).await;
    assert_eq!(element_rows_stored(&s, "kvs/t:0"), 0);
    assert_eq!(g.get(&s, &h), Ok(Reply::Bulk(b"s".to_vec())));
    g.write(&s, vec![WriteOp::Del { keys: vec![h.as_bytes().to_vec()] }, hset(&h, 0..200)]);
    assert_eq!(element_slots(&g), BTreeSet::from([3]));
    g.write(&s, vec![WriteOp::Flush]);
    assert!(element_slots(&g).is_empty(), "FLUSHDB drops every row");
}

/// A hash's element rows live beside its key: they are not keys (DBSIZE,
/// SCAN), they reach the element table with a flush, they move with their
/// slot in byte-bounded chunks, and they travel in snapshots.
#[tokio::test]
async fn collections_move_with_their_slot_and_travel_in_snapshots() {
    let s = Storage::in_memory().unwrap();
    let mut src = Group::new("t:0", 0..8);
    let mut dst = Group::new("t:1", 0..0);
    let [h, other] = [key_in(3, 2)[0].clone(), key_in(3, 2)[1].clone()];
    let staying = key_in(4, 1)[0].clone();
    src.write(&s, vec![hset(&h, 0..150), set(&other, "v"), set(&staying, "v")]);
    src.flush(&s).await;
    src.write(&s, vec![hset(&h, 100..300)]);
    assert_eq!(src.dbsize(&s), Reply::Int(3));
    assert_eq!(hlen(&src, &s, &h), Ok(Reply::Int(300)));
    let keys = scan(&src, &s, 0..SLOTS, None, 100);
    let page = ScanPage::from_reply(&keys.unwrap()).unwrap();
    assert_eq!(page.keys.len(), 3, "element rows are not keys: {:?}", page.keys);
    assert!(src.m.approx_bytes(&s).unwrap() > 150 * 20, "element rows count in the size");

    let begin = src.slots(&s, SlotCommand::BeginExport { move_id: 4, slots: vec![3] }).unwrap();
    dst.slots(&s, SlotCommand::BeginImport { move_id: 4, slots: vec![3] }).unwrap();
    let mut cursor: Option<Vec<u8>> = None;
    let mut chunks = 0;
    loop {
        let (rows, done) = src.m.export_rows(&s, 4, cursor.as_deref(), 1000).unwrap();
        assert!(rows.iter().map(Row::size).sum::<usize>() < 1100, "chunks stay near their bound");
        chunks += 1;
        cursor = rows.last().map(|r| r.key.clone()).or(cursor);
        dst.apply(&s, &KvEntry::Rows { move_id: 4, rows });
        if chunks == 3 {
            // A field changes behind the copy; the delta brings it.
            src.write(&s, vec![hset(&h, 300..301)]);
        }
        if done {
            break;
        }
    }
    assert!(chunks > 10, "a 300-field hash in 1000-byte chunks: {chunks}");
    let (rows, _) = src.m.delta(&s, 4, begin).unwrap();
    dst.apply(&s, &KvEntry::Rows { move_id: 4, rows });
    src.slots(&s, SlotCommand::Fence { move_id: 4, slots: vec![3] }).unwrap();
    src.slots(&s, SlotCommand::Release { move_id: 4, slots: vec![3], to: 1, epoch: 2 }).unwrap();
    dst.slots(&s, SlotCommand::Adopt { move_id: 4, slots: vec![3] }).unwrap();
    assert_eq!(hlen(&dst, &s, &h), Ok(Reply::Int(301)));
    assert_eq!(dst.dbsize(&s), Reply::Int(2));
    assert_eq!(element_slots(&dst), BTreeSet::from([3]), "copied rows tell the target where they are");
    assert!(element_slots(&src).is_empty(), "the slot left the source with its rows");
    assert!(matches!(hlen(&src, &s, &h), Err(Refusal::Moved { .. })));
    let field = |g: &Group, i: usize| {
        let op = tidal_core::kv::HashRead::Get { field: format!("field-{i}").into_bytes() };
        g.m.read(&s, &ReadOp::Hash { key: h.as_bytes().to_vec(), op }, 1).unwrap()
    };
    assert_eq!(field(&dst, 299), Ok(Reply::Bulk(b"value-299".to_vec())));
    assert_eq!(field(&dst, 300), Ok(Reply::Bulk(b"value-300".to_vec())));
    // The source's copy is dropped, element rows and all, table included.
    src.flush(&s).await;
    dst.flush(&s).await;
    {
        let txn = s.state().read().unwrap();
        let Table { elements, .. } = open_table(&txn, "kvs/t:0", Purging::default()).unwrap();
        assert_eq!(elements.map(|t| t.len().unwrap()), Some(0));
    }

    // A snapshot of the target, in small pieces, rebuilds it elsewhere.
    let cut = pieces(&dst.m, &s, 500);
    let other_store = Storage::in_memory().unwrap();
    let spec = KvSpec { slots: SLOTS, genesis: vec![] };
    let copy = Arc::new(KvMachine::new("t:1", &spec));
    stage_all(&copy, &other_store, cut).await;
    let m = copy.clone();
    other_store.state().writer().call(true, move |txn| m.import_staged(txn)).await.unwrap();
    let copy = Group { m: KvMachine::open("t:1", Some(spec), &other_store).await.unwrap(), index: 100 };
    assert_eq!(hlen(&copy, &other_store, &h), Ok(Reply::Int(301)));
    assert_eq!(copy.dbsize(&other_store), Reply::Int(2));
}

/// A collection's version (what WATCH compares) moves with every change
/// to it, and only then: a field written, a member added; not an SADD,
/// ZADD or SMOVE's destination that changed nothing.
#[tokio::test]
async fn a_collection_version_moves_only_when_it_changes() {
    use tidal_core::kv::{SetWrite, ZSetWrite};
    let s = Storage::in_memory().unwrap();
    let mut g = Group::new("t:0", 0..8);
    let b = |x: &str| x.as_bytes().to_vec();
    let sadd = |m: &str| WriteOp::Members { key: b("s"), op: SetWrite::Add { members: vec![b(m)] } };
    let zadd = |score: f64, m: &str| WriteOp::ZSet {
        key: b("z"),
        op: ZSetWrite::Add { flags: Default::default(), pairs: vec![(score, b(m))] },
    };
    g.write(&s, vec![sadd("a"), zadd(1.0, "a"), hset("h", 0..2)]);
    let before = versions(&g, &s, &["s", "z", "h"]).1;
    assert_eq!(before, vec![1, 1, 1]);
    g.write(&s, vec![sadd("a"), zadd(1.0, "a")]);
    assert_eq!(versions(&g, &s, &["s", "z"]).1, vec![1, 1], "nothing changed");
    g.write(&s, vec![sadd("b"), zadd(2.0, "a"), hset("h", 0..1)]);
    assert_eq!(versions(&g, &s, &["s", "z", "h"]).1, vec![3, 3, 3]);
    // SMOVE of a member the destination holds changes only the source.
    let smove = |m: &str| WriteOp::Members { key: b("s2"), op: SetWrite::Move { dest: b("s"), member: b(m) } };
    g.write(&s, vec![WriteOp::Members { key: b("s2"), op: SetWrite::Add { members: vec![b("a"), b("c")] } }]);
    g.write(&s, vec![smove("a")]);
    assert_eq!(versions(&g, &s, &["s2", "s"]).1, vec![5, 3], "the destination already held it");
    g.write(&s, vec![smove("c")]);
    assert_eq!(versions(&g, &s, &["s2", "s"]).1, vec![0, 6], "the source emptied, the destination grew");
}

/// Rows in the table, purging ones included (what the disk holds).
fn raw_rows(s: &Storage, table: &str) -> u64 {
    let txn = s.state().read().unwrap();
    let t = open_table(&txn, table, Purging::default()).unwrap();
    t.stored_keys().unwrap()
}

/// A released slot bigger than one flush's purge leaves the table over
/// several flushes; meanwhile no count, scan or snapshot sees its rows, a
/// reopen keeps hiding them, and a move of the slot back empties it whole
/// before its new rows land.
#[tokio::test]
async fn a_released_slot_is_purged_over_several_flushes_and_never_seen_meanwhile() {
    let s = Storage::in_memory().unwrap();
    let mut src = Group::new("t:0", 0..8);
    let moving = key_in(3, 1400);
    let staying = key_in(4, 3);
    let big = "x".repeat(4096);
    for chunk in moving.chunks(100) {
        src.write(&s, chunk.iter().map(|k| set(k, &big)).collect());
    }
    src.write(&s, staying.iter().map(|k| set(k, "v")).collect());
    src.flush(&s).await;
    assert_eq!(raw_rows(&s, "kvs/t:0"), 1403);

    let slots = vec![3];
    src.slots(&s, SlotCommand::BeginExport { move_id: 1, slots: slots.clone() }).unwrap();
    src.slots(&s, SlotCommand::Fence { move_id: 1, slots: slots.clone() }).unwrap();
    src.slots(&s, SlotCommand::Release { move_id: 1, slots: slots.clone(), to: 1, epoch: 2 }).unwrap();
    assert!(src.m.backlog(), "a dropped slot is work for the next flushes");
    src.flush(&s).await;
    let left = raw_rows(&s, "kvs/t:0");
    assert!(left > 3 && left < 1403, "one flush deletes part of the slot: {left} rows left");
    assert!(src.m.backlog());
    assert_eq!(src.dbsize(&s), Reply::Int(3));
    let keys = src.m.read(&s, &ReadOp::Keys { pattern: b"*".to_vec() }, 1).unwrap();
    assert!(matches!(&keys, Ok(Reply::Array(k)) if k.len() == 3), "KEYS steps over the purging slot: {keys:?}");
    let mut copied = pieces(&src.m, &s, 1 << 20);
    assert_eq!(copied.len(), 1, "a snapshot leaves the purging rows out");
    let piece: KvPiece = decode(split_version(&copied.remove(0)).1).unwrap();
    assert_eq!(piece.rows.len(), 3);
    assert!(src.m.approx_bytes(&s).unwrap() > 0);

    // A restart keeps hiding what is left.
    let reopened = Group { m: KvMachine::open("t:0", Some(KvSpec::whole(SLOTS)), &s).await.unwrap(), index: src.index };
    assert_eq!(reopened.dbsize(&s), Reply::Int(3));
    assert!(reopened.m.backlog());

    // The slot moves back before its purge ends: it is emptied whole, and
    // only the imported rows remain.
    let mut src = reopened;
    src.slots(&s, SlotCommand::BeginImport { move_id: 2, slots: slots.clone() }).unwrap();
    let back = Row { key: stored_key(3, moving[7].as_bytes()), record: Some(Record::new("back").encode()) };
    src.apply(&s, &KvEntry::Rows { move_id: 2, rows: vec![back] });
    src.slots(&s, SlotCommand::Adopt { move_id: 2, slots }).unwrap();
    assert_eq!(src.dbsize(&s), Reply::Int(4));
    assert_eq!(src.get(&s, &moving[8]), Ok(Reply::Nil), "a purging row is never read");
    src.flush(&s).await;
    assert_eq!(raw_rows(&s, "kvs/t:0"), 4);
    assert!(!src.m.backlog());
    assert_eq!(src.get(&s, &moving[7]), Ok(Reply::Bulk(b"back".to_vec())));
    assert_eq!(src.get(&s, &moving[8]), Ok(Reply::Nil));
    assert_eq!(src.dbsize(&s), Reply::Int(4));
}

/// Flushes with nothing applied carry a purge to its end.
#[tokio::test]
async fn flushes_with_nothing_applied_finish_a_purge() {
    let s = Storage::in_memory().unwrap();
    let mut src = Group::new("t:0", 0..8);
    let big = "y".repeat(4096);
    for chunk in key_in(5, 2500).chunks(100) {
        src.write(&s, chunk.iter().map(|k| set(k, &big)).collect());
    }
    src.flush(&s).await;
    src.slots(&s, SlotCommand::BeginExport { move_id: 1, slots: vec![5] }).unwrap();
    src.slots(&s, SlotCommand::Fence { move_id: 1, slots: vec![5] }).unwrap();
    src.slots(&s, SlotCommand::Release { move_id: 1, slots: vec![5], to: 1, epoch: 2 }).unwrap();
    let mut flushes = 0;
    while src.m.backlog() {
        src.flush(&s).await;
        flushes += 1;
        assert!(flushes < 10, "a purge ends");
    }
    // About 10 MiB at 4 MiB a flush: three flushes.
    assert_eq!(flushes, 3);
    assert_eq!(raw_rows(&s, "kvs/t:0"), 0);
    let txn = s.state().read().unwrap();
    let m = txn.open_table(META).unwrap();
    assert!(m.get(("t:0", PURGING)).unwrap().is_none(), "no purging record is left");
}

#[tokio::test]
async fn the_expiry_sample_walks_served_keys_and_finds_the_expired_ones() {
    let s = Storage::in_memory().unwrap();
    let mut g = Group::new("t:0", 0..8);
    g.write(&s, vec![set("plain", "v")]);
    let (a, b) = (&key_in(3, 2)[0], &key_in(3, 2)[1]);
    g.write(&s, vec![with_ttl(a, 100), with_ttl(b, 10_000)]);
    g.flush(&s).await;
    // Entries of this test apply at time 1: at 500, `a` is gone, `b` not.
    let whole = g.m.expiry_sample(&s, None, 100, 500).unwrap();
    assert_eq!((whole.examined, whole.with_ttl, whole.next.clone()), (3, 2, None));
    assert_eq!(whole.expired, BTreeMap::from([(3, vec![a.as_bytes().to_vec()])]));
    // Page by page, in stored order, to the end.
    let mut seen = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = g.m.expiry_sample(&s, after.as_deref(), 1, 500).unwrap();
        seen.extend(page.expired.into_values().flatten());
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(seen, vec![a.as_bytes().to_vec()]);
    // The reap applies at the entry's time, so `b` stays until its own.
    let out = g.write(&s, vec![WriteOp::Reap { keys: vec![a.as_bytes().to_vec(), b.as_bytes().to_vec()] }]);
    assert_eq!(out, vec![Ok(Reply::Int(0))], "at time 1 neither had expired");
}

fn with_ttl(k: &str, at: u64) -> WriteOp {
    WriteOp::Set {
        key: k.as_bytes().to_vec(),
        value: b"v".to_vec(),
        expiry: Expiry::AtMs(at),
        cond: SetCond::None,
        get: false,
    }
}

fn bytes(keys: &[&String]) -> Vec<Vec<u8>> {
    keys.iter().map(|k| k.as_bytes().to_vec()).collect()
}

#[tokio::test]
async fn keys_are_found_expired_by_their_noted_deadlines_without_a_walk() {
    let s = Storage::in_memory().unwrap();
    let mut g = Group::new("t:0", 0..8);
    // A replica just opened may hold keys with a TTL it never noted: the
    // note is whole once a walk that began after that has ended.
    assert!(!g.m.deadlines_whole());
    let stored_before = &key_in(2, 1)[0];
    g.write(&s, vec![with_ttl(stored_before, 50)]);
    g.m.inner.write().unwrap().deadlines.get_mut().unwrap().forget_all();
    let era = g.m.walk_begins(false);
    assert_eq!(g.m.expiry_sample(&s, None, 100, 1).unwrap().with_ttl, 1);
    g.m.walk_ended(era);
    assert!(g.m.deadlines_whole());
    assert_eq!(g.m.noted_deadlines(), (1, false), "the walk noted the key it met");

    let k = key_in(3, 4);
    let (a, b, c, d) = (&k[0], &k[1], &k[2], &k[3]);
    g.write(&s, vec![with_ttl(a, 100), with_ttl(b, 200), with_ttl(c, 300), with_ttl(d, 400), set("plain", "v")]);
    g.flush(&s).await;
    // Stored again without a TTL, sooner, and deleted; the noted
    // deadlines follow, from the layers as from the table.
    g.write(&s, vec![set(b, "v"), with_ttl(c, 60), WriteOp::Del { keys: bytes(&[d]) }]);
    assert_eq!(g.m.noted_deadlines(), (3, false));
    let due = g.m.expiry_due(&s, 100, 500).unwrap();
    assert_eq!(due.expired, BTreeMap::from([(2, bytes(&[stored_before])), (3, bytes(&[c, a]))]));
    assert_eq!((due.examined, due.next), (3, None));
    let at_60 = g.m.expiry_due(&s, 100, 60).unwrap().expired;
    assert_eq!(at_60, BTreeMap::from([(2, bytes(&[stored_before]))]), "`c` is live at its deadline");
    let first = g.m.expiry_due(&s, 1, 500).unwrap();
    assert_eq!((first.examined, first.next), (1, Some(c.as_bytes().to_vec())), "soonest first, at most the limit");

    // The reap forgets what it deletes; a key written again meanwhile
    // stays, noted under its new deadline.
    g.write_at(&s, 500, vec![with_ttl(a, 900)]);
    let reaps = vec![WriteOp::Reap { keys: bytes(&[stored_before]) }, WriteOp::Reap { keys: bytes(&[c, a]) }];
    assert_eq!(g.write_at(&s, 500, reaps), vec![Ok(Reply::Int(1)), Ok(Reply::Int(1))]);
    assert_eq!(g.m.noted_deadlines(), (1, false));
    assert!(g.m.expiry_due(&s, 100, 500).unwrap().expired.is_empty());
    assert_eq!(g.m.expiry_due(&s, 100, 901).unwrap().expired, BTreeMap::from([(3, bytes(&[a]))]));

    // FLUSHDB leaves nothing to note; a snapshot leaves the note to a walk.
    g.write(&s, vec![WriteOp::Flush]);
    assert_eq!(g.m.noted_deadlines(), (0, false));
    assert!(g.m.deadlines_whole());
    g.m.reload(s.state()).unwrap();
    assert!(!g.m.deadlines_whole());
}

#[tokio::test]
async fn a_moved_slot_brings_its_deadlines_and_keeps_them_until_it_is_served() {
    let s = Storage::in_memory().unwrap();
    let (mut src, mut dst, _) = slot_2_moving(&s);
    let k = key_in(2, 1);
    src.write(&s, vec![with_ttl(&k[0], 100)]);
    let (rows, _) = src.m.export_rows(&s, 1, None, 1 << 20).unwrap();
    let era = dst.m.walk_begins(false);
    dst.m.walk_ended(era);
    dst.apply(&s, &KvEntry::Rows { move_id: 1, rows });
    assert_eq!(dst.m.noted_deadlines(), (1, false), "a copied row's deadline is noted");
    let due = dst.m.expiry_due(&s, 100, 500).unwrap();
    assert_eq!((due.examined, due.next), (0, None), "an importing slot's key waits");
    assert_eq!(dst.m.noted_deadlines(), (1, false));
    src.slots(&s, SlotCommand::Fence { move_id: 1, slots: vec![2] }).unwrap();
    src.slots(&s, SlotCommand::Release { move_id: 1, slots: vec![2], to: 1, epoch: 2 }).unwrap();
    dst.slots(&s, SlotCommand::Adopt { move_id: 1, slots: vec![2] }).unwrap();
    assert!(!dst.m.deadlines_whole(), "adopted slots are walked for keys stored before a restart");
    assert_eq!(dst.m.expiry_due(&s, 100, 500).unwrap().expired, BTreeMap::from([(2, bytes(&[&k[0]]))]));
    // The slot left the source, and its keys left the source's note.
    assert_eq!(src.m.noted_deadlines(), (0, false));
    assert_eq!(src.m.expiry_due(&s, 100, 500).unwrap().examined, 0);
}
