// Genesis slots are lists of ranges; a list of one range is what is meant.
#![allow(clippy::single_range_in_vec_init)]

use proptest::prelude::*;

use super::*;

fn owned(slots: u32, r: Range<u32>) -> Ownership {
    Ownership::genesis(slots, &[r])
}

#[test]
fn genesis_owns_its_ranges_and_nothing_else() {
    let o = owned(16, 4..8);
    assert_eq!(o.served().collect::<Vec<_>>(), vec![4, 5, 6, 7]);
    assert_eq!(o.check_write(4), Ok(()));
    assert_eq!(o.check_write(3), Err(Refusal::Moved { slot: 3, to: None, epoch: 0 }));
    assert!(o.settled());
}

#[test]
fn a_slot_moves_out_through_export_fence_and_release() {
    let mut o = owned(16, 0..4);
    let slots = vec![1, 2];
    assert_eq!(o.apply(&SlotCommand::BeginExport { move_id: 7, slots: slots.clone() }), Ok(Effects::default()));
    assert_eq!(o.check_write(1), Ok(()), "exporting slots still take writes");
    assert!(!o.settled());
    assert_eq!(o.exporting(7), vec![1, 2]);
    o.apply(&SlotCommand::Fence { move_id: 7, slots: slots.clone() }).unwrap();
    assert_eq!(o.check_write(1), Err(Refusal::Fenced { slot: 1, move_id: 7 }));
    assert_eq!(o.check_read(1), Ok(()), "a fenced slot still serves reads");
    let fx = o.apply(&SlotCommand::Release { move_id: 7, slots: slots.clone(), to: 3, epoch: 9 }).unwrap();
    assert_eq!(fx.drop_slots, vec![1, 2]);
    assert_eq!(o.check_read(2), Err(Refusal::Moved { slot: 2, to: Some(3), epoch: 9 }));
    assert_eq!(o.served().collect::<Vec<_>>(), vec![0, 3]);
    assert!(o.settled());
}

#[test]
fn a_slot_moves_in_through_import_and_adopt() {
    let mut o = owned(16, 0..0);
    o.apply(&SlotCommand::BeginImport { move_id: 3, slots: vec![5] }).unwrap();
    assert_eq!(o.check_read(5), Err(Refusal::Fenced { slot: 5, move_id: 3 }), "an importing slot is not served");
    assert_eq!(o.served().count(), 0);
    o.apply(&SlotCommand::Adopt { move_id: 3, slots: vec![5] }).unwrap();
    assert_eq!(o.check_write(5), Ok(()));
}

#[test]
fn rollback_puts_both_sides_back() {
    let mut src = owned(8, 0..8);
    let mut dst = owned(8, 0..0);
    let before_src = src.clone();
    let before_dst = dst.clone();
    src.apply(&SlotCommand::BeginExport { move_id: 1, slots: vec![2, 3] }).unwrap();
    dst.apply(&SlotCommand::BeginImport { move_id: 1, slots: vec![2, 3] }).unwrap();
    src.apply(&SlotCommand::Fence { move_id: 1, slots: vec![2, 3] }).unwrap();
    src.apply(&SlotCommand::Unfence { move_id: 1, slots: vec![2, 3] }).unwrap();
    let fx = dst.apply(&SlotCommand::DropImport { move_id: 1, slots: vec![2, 3] }).unwrap();
    assert_eq!(fx.drop_slots, vec![2, 3]);
    // Every slot is as before; only the marks remember the move.
    assert_eq!(src.states().collect::<Vec<_>>(), before_src.states().collect::<Vec<_>>());
    assert_eq!(dst.states().collect::<Vec<_>>(), before_dst.states().collect::<Vec<_>>());
}

#[test]
fn conflicting_commands_change_nothing() {
    let mut o = owned(8, 0..4);
    o.apply(&SlotCommand::BeginExport { move_id: 1, slots: vec![0] }).unwrap();
    let before = o.clone();
    // Another move cannot take a slot that is already moving, even partly.
    let e = o.apply(&SlotCommand::BeginExport { move_id: 2, slots: vec![1, 0] }).unwrap_err();
    assert!(matches!(e, OwnershipError::Conflict { slot: 0, move_id: 2, .. }), "{e}");
    assert_eq!(o, before);
    // No fence without an export, no import over an owned slot, no out-of-range slot.
    assert!(o.apply(&SlotCommand::Fence { move_id: 1, slots: vec![1] }).is_err());
    assert!(o.apply(&SlotCommand::BeginImport { move_id: 1, slots: vec![1] }).is_err());
    assert_eq!(
        o.apply(&SlotCommand::Adopt { move_id: 1, slots: vec![8] }),
        Err(OwnershipError::OutOfRange { slot: 8, slots: 8 })
    );
    assert_eq!(o, before);
}

fn arb_command() -> impl Strategy<Value = SlotCommand> {
    let slots = proptest::collection::vec(0u32..6, 1..4);
    (0u8..7, 1u64..3, slots, 0u32..3, 1u64..4).prop_map(|(k, move_id, slots, to, epoch)| match k {
        0 => SlotCommand::BeginExport { move_id, slots },
        1 => SlotCommand::Fence { move_id, slots },
        2 => SlotCommand::Unfence { move_id, slots },
        3 => SlotCommand::Release { move_id, slots, to, epoch },
        4 => SlotCommand::BeginImport { move_id, slots },
        5 => SlotCommand::Adopt { move_id, slots },
        _ => SlotCommand::DropImport { move_id, slots },
    })
}

proptest! {
    /// Whatever sequence of commands arrives: a refused one changes
    /// nothing, an applied one applies again without further change, and
    /// only slots that held data are dropped.
    #[test]
    fn commands_are_all_or_nothing_and_idempotent(cmds in proptest::collection::vec(arb_command(), 1..40)) {
        let mut o = owned(6, 0..3);
        for cmd in &cmds {
            let before = o.clone();
            match o.apply(cmd) {
                Err(_) => prop_assert_eq!(&o, &before),
                Ok(fx) => {
                    for s in &fx.drop_slots {
                        let held = matches!(
                            before.state(*s),
                            Some(SlotState::Fenced { .. }) | Some(SlotState::Importing { .. })
                        );
                        prop_assert!(held, "slot {} dropped from {:?}", s, before.state(*s));
                    }
                    let after = o.clone();
                    let again = o.apply(cmd);
                    prop_assert!(again.is_ok(), "{:?} applied once but not twice: {:?}", cmd, again);
                    prop_assert_eq!(&o, &after);
                    prop_assert!(again.unwrap().drop_slots.is_empty());
                }
            }
            for (slot, st) in o.states() {
                // Served for writes exactly when owned.
                prop_assert_eq!(o.check_write(slot).is_ok(), matches!(st, SlotState::Owned { .. }));
            }
        }
    }
}

/// Every slot command of move `id` of `slots`, source side then target side.
fn commands(id: MoveId, slots: &[u32]) -> (Vec<SlotCommand>, Vec<SlotCommand>) {
    let s = slots.to_vec();
    let source = vec![
        SlotCommand::BeginExport { move_id: id, slots: s.clone() },
        SlotCommand::Fence { move_id: id, slots: s.clone() },
        SlotCommand::Unfence { move_id: id, slots: s.clone() },
        SlotCommand::Release { move_id: id, slots: s.clone(), to: 1, epoch: id + 1 },
    ];
    let target = vec![
        SlotCommand::BeginImport { move_id: id, slots: s.clone() },
        SlotCommand::Adopt { move_id: id, slots: s.clone() },
        SlotCommand::DropImport { move_id: id, slots: s },
    ];
    (source, target)
}

/// Run move `id` of `slots` from `src` to `dst` to its end: committed
/// (export, fence, release, adopt) or rolled back after the fence.
fn run_move(src: &mut Ownership, dst: &mut Ownership, id: MoveId, slots: &[u32], commit: bool) {
    let s = slots.to_vec();
    src.apply(&SlotCommand::BeginExport { move_id: id, slots: s.clone() }).unwrap();
    dst.apply(&SlotCommand::BeginImport { move_id: id, slots: s.clone() }).unwrap();
    src.apply(&SlotCommand::Fence { move_id: id, slots: s.clone() }).unwrap();
    if commit {
        src.apply(&SlotCommand::Release { move_id: id, slots: s.clone(), to: 1, epoch: id + 1 }).unwrap();
        dst.apply(&SlotCommand::Adopt { move_id: id, slots: s }).unwrap();
    } else {
        src.apply(&SlotCommand::Unfence { move_id: id, slots: s.clone() }).unwrap();
        dst.apply(&SlotCommand::DropImport { move_id: id, slots: s }).unwrap();
    }
}

/// A command of a move that has finished, arriving late from an executor
/// that no longer drives it, changes nothing, however the move and the
/// ones after it ended: no slot is left exporting or importing for a
/// finished move, which would block every later move of the slot.
#[test]
fn late_commands_of_a_finished_move_change_nothing() {
    let slots = [2, 3];
    for first in [true, false] {
        for second in [true, false] {
            let mut a = owned(8, 0..8);
            let mut b = owned(8, 0..0);
            run_move(&mut a, &mut b, 1, &slots, first);
            // Move 2 takes the slots the other way if move 1 committed.
            if first {
                run_move(&mut b, &mut a, 2, &slots, second);
            } else {
                run_move(&mut a, &mut b, 2, &slots, second);
            }
            let (before_a, before_b) = (a.clone(), b.clone());
            let (source, target) = commands(1, &slots);
            for cmd in source.iter().chain(&target) {
                for side in [&mut a, &mut b] {
                    let kept = side.clone();
                    if side.apply(cmd).is_ok() {
                        assert_eq!(*side, kept, "{cmd:?} after moves ending {first}/{second}");
                    }
                }
            }
            assert_eq!((&a, &b), (&before_a, &before_b));
            assert!(a.settled() && b.settled());
        }
    }
    // The same move, once its part is over, cannot begin again; its own
    // finishing commands still apply (as no-ops), so retries are harmless.
    let mut a = owned(8, 0..8);
    let mut b = owned(8, 0..0);
    run_move(&mut a, &mut b, 5, &slots, false);
    let late = a.apply(&SlotCommand::BeginExport { move_id: 5, slots: slots.to_vec() });
    assert!(matches!(late, Err(OwnershipError::Stale { move_id: 5, last: 5, .. })), "{late:?}");
    assert!(b.apply(&SlotCommand::BeginImport { move_id: 5, slots: slots.to_vec() }).is_err());
    assert!(a.apply(&SlotCommand::Unfence { move_id: 5, slots: slots.to_vec() }).is_ok());
    assert!(b.apply(&SlotCommand::DropImport { move_id: 5, slots: slots.to_vec() }).is_ok());
    assert!(a.settled() && b.settled());
    // A retried begin of a move still under way is accepted.
    a.apply(&SlotCommand::BeginExport { move_id: 6, slots: slots.to_vec() }).unwrap();
    a.apply(&SlotCommand::BeginExport { move_id: 6, slots: slots.to_vec() }).unwrap();
    assert_eq!(a.exporting(6), slots.to_vec());
}

/// Ownership stored in format 1 reads into the current one, with the moves
/// under way marked.
#[test]
fn format_1_ownership_reads_with_marks_for_moves_under_way() {
    let mut o = owned(8, 0..4);
    o.apply(&SlotCommand::BeginExport { move_id: 3, slots: vec![1] }).unwrap();
    let v1 = OwnershipV1 { slots: o.slots, states: o.states.clone() };
    let mut back = Ownership::from(v1);
    assert_eq!(back.state(1), Some(SlotState::Owned { exporting: Some(3) }));
    assert!(matches!(
        back.apply(&SlotCommand::BeginExport { move_id: 2, slots: vec![1] }),
        Err(OwnershipError::Stale { .. })
    ));
    back.apply(&SlotCommand::Fence { move_id: 3, slots: vec![1] }).unwrap();
}
