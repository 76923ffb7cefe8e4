// Genesis slots are lists of ranges; a list of one range is what is meant.
#![allow(clippy::single_range_in_vec_init)]

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::cluster::{Placement, Tenant};
use crate::ownership::{Ownership, SlotState};

fn state(prgs: u32) -> ClusterState {
    let mut s = ClusterState::default();
    s.tenants.insert("t".into(), Tenant::new("t", 16, prgs));
    s.tenants.insert("u".into(), Tenant::new("u", 16, 1));
    for (tenant, n) in [("t", prgs), ("u", 1)] {
        for i in 0..n {
            let prg = PrgId::new(tenant, i);
            s.placements.insert(prg.clone(), Placement::new(prg, vec![1, 2, 3], 1, Vec::new()));
        }
    }
    s
}

fn new_move(id: MoveId, slots: Vec<u32>, from: u32, to: u32) -> SlotMove {
    SlotMove {
        id,
        tenant: "t".into(),
        slots,
        from,
        to,
        phase: MovePhase::Copying,
        progress: MoveProgress::default(),
        planned_epoch: 1,
        commit_epoch: None,
        created_ms: 0,
        updated_ms: 0,
        fenced_ms: None,
        finished_ms: None,
        cancel_requested: false,
        error: None,
    }
}

#[test]
fn a_valid_move_names_its_source() {
    let s = state(2);
    // Slots 0..8 belong to t:0, 8..16 to t:1.
    assert_eq!(check_new_move(&s, "t", &[0, 1, 7], None, &PrgId::new("t", 1), &[]), Ok(0));
    assert_eq!(check_new_move(&s, "t", &[8], Some(1), &PrgId::new("t", 0), &[]), Ok(1));
}

#[test]
fn bad_moves_are_refused_with_the_reason() {
    let s = state(2);
    let to = PrgId::new("t", 1);
    let chk = |slots: &[u32], from: Option<u32>, to: &PrgId| check_new_move(&s, "t", slots, from, to, &[]);
    assert_eq!(check_new_move(&s, "x", &[0], None, &to, &[]), Err(MoveError::UnknownTenant("x".into())));
    assert!(matches!(chk(&[0], None, &PrgId::new("u", 0)), Err(MoveError::OtherTenant { .. })));
    assert_eq!(chk(&[0], None, &PrgId::new("t", 9)), Err(MoveError::UnknownPrg(PrgId::new("t", 9))));
    assert_eq!(chk(&[], None, &to), Err(MoveError::NoSlots));
    assert!(matches!(chk(&[16], None, &to), Err(MoveError::OutOfRange { slot: 16, .. })));
    assert!(matches!(chk(&[7, 8], None, &PrgId::new("t", 0)), Err(MoveError::SeveralSources { .. })));
    assert_eq!(chk(&[8], Some(0), &to), Err(MoveError::NotOwned { prg: PrgId::new("t", 0), slot: 8 }));
    assert_eq!(chk(&[8], None, &to), Err(MoveError::SameTarget(to.clone())));
    let busy = new_move(4, vec![2, 3], 0, 1);
    assert_eq!(check_new_move(&s, "t", &[3, 4], None, &to, &[&busy]), Err(MoveError::AlreadyMoving { slot: 3, id: 4 }));
    let mut done = busy.clone();
    done.phase = MovePhase::Done;
    assert_eq!(check_new_move(&s, "t", &[3, 4], None, &to, &[&done]), Ok(0));
}

#[test]
fn slot_lists_parse_into_sorted_distinct_slots() {
    assert_eq!(parse_slots("0-3,2,10"), Ok(vec![0, 1, 2, 3, 10]));
    assert_eq!(parse_slots(" 5 "), Ok(vec![5]));
    for bad in ["", "a", "3-1", "1-", "-2", "1,,x"] {
        assert!(parse_slots(bad).is_err(), "{bad}");
    }
    let top = crate::slot::MAX_SLOTS;
    assert_eq!(parse_slots(&format!("{}-{}", top - 2, top - 1)), Ok(vec![top - 2, top - 1]));
    // A range past the largest tenant is refused, not expanded.
    for huge in ["0-4294967295".to_string(), format!("{top}"), format!("1-{top}")] {
        let e = parse_slots(&huge).unwrap_err();
        assert!(e.contains("slots are numbered below 16384"), "{huge}: {e}");
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

    /// Any text: slots below the limit, sorted and distinct, or an error.
    #[test]
    fn any_slot_text_parses_or_is_refused(text in "[0-9, -]{0,40}|.{0,40}") {
        if let Ok(slots) = parse_slots(&text) {
            proptest::prop_assert!(!slots.is_empty());
            proptest::prop_assert!(slots.windows(2).all(|w| w[0] < w[1]));
            proptest::prop_assert!(slots.iter().all(|s| *s < crate::slot::MAX_SLOTS));
        }
    }
}

#[test]
fn the_catch_up_fences_once_rounds_are_small_or_spent() {
    let l = MoveLimits { fence_below_bytes: 100, max_rounds: 3, fence_budget_ms: 50 };
    assert_eq!(after_round(1000, 1, &l), CatchUp::Again);
    assert_eq!(after_round(100, 1, &l), CatchUp::Fence);
    assert_eq!(after_round(1000, 3, &l), CatchUp::Fence);
    let mut m = new_move(1, vec![1], 0, 1);
    m.phase = MovePhase::Fenced;
    m.fenced_ms = Some(1000);
    assert!(!fence_overrun(&m, 1050, &l));
    assert!(fence_overrun(&m, 1051, &l));
}

#[test]
fn only_uncommitted_moves_roll_back() {
    use MovePhase::*;
    for p in [Copying, CatchUp, Fenced] {
        assert_eq!(on_failure(p), RollingBack);
        assert!(p.may_become(RollingBack));
    }
    for p in [Committed, Done] {
        assert_eq!(on_failure(p), p);
        assert!(!p.may_become(RollingBack));
    }
    assert!(!Committed.may_become(Fenced));
}

/// The move protocol run against the two PRGs' ownership, with steps that
/// fail (before or after taking effect), cancels and executor restarts at
/// random. At no point do both PRGs take writes, or serve reads, for a
/// moving slot; when the move finishes exactly one PRG owns each slot,
/// the target if and only if the move committed.
#[derive(Debug, Clone)]
enum Fault {
    None,
    /// The step fails without taking effect.
    Before,
    /// The step takes effect but its answer is lost.
    After,
    Cancel,
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        6 => Just(Fault::None),
        1 => Just(Fault::Before),
        1 => Just(Fault::After),
        1 => Just(Fault::Cancel),
    ]
}

fn check_exclusive(src: &Ownership, dst: &Ownership, slots: &[u32]) -> Result<(), TestCaseError> {
    for &s in slots {
        prop_assert!(
            !(src.check_write(s).is_ok() && dst.check_write(s).is_ok()),
            "slot {} writable on both: {:?} / {:?}",
            s,
            src.state(s),
            dst.state(s)
        );
        prop_assert!(!(src.check_read(s).is_ok() && dst.check_read(s).is_ok()), "slot {} readable on both", s);
    }
    Ok(())
}

proptest! {
    #[test]
    fn moves_hand_off_slots_exactly_once(faults in proptest::collection::vec(fault(), 0..60)) {
        let slots = vec![2, 3];
        let mut src = Ownership::genesis(8, &[0..8]);
        let mut dst = Ownership::genesis(8, &[]);
        let mut m = new_move(1, slots.clone(), 0, 1);
        let mut faults = faults.into_iter();
        let mut epoch = 1;
        let mut steps = 0;
        while !m.phase.is_finished() {
            steps += 1;
            prop_assert!(steps < 500, "the move does not finish: {:?}", m.phase);
            // An executor (re)starts the phase from its first step.
            for action in plan(&m) {
                let f = faults.next().unwrap_or(Fault::None);
                if matches!(f, Fault::Cancel) && !m.phase.is_committed() {
                    m.cancel_requested = true;
                }
                if matches!(f, Fault::Before) {
                    m.phase = on_failure(m.phase);
                    break;
                }
                match &action {
                    Action::Source(cmd) => { src.apply(cmd).map_err(|e| TestCaseError::fail(e.to_string()))?; }
                    Action::Target(cmd) => { dst.apply(cmd).map_err(|e| TestCaseError::fail(e.to_string()))?; }
                    Action::CopyRows | Action::CatchUp | Action::FinalDelta => {}
                    Action::Commit => {
                        prop_assert_eq!(m.phase, MovePhase::Fenced);
                        for s in &slots {
                            prop_assert!(
                                matches!(src.state(*s), Some(SlotState::Fenced { .. })),
                                "committing while slot {} is {:?} on the source", s, src.state(*s)
                            );
                        }
                        epoch += 1;
                        m.commit_epoch = Some(epoch);
                        m.phase = MovePhase::Committed;
                    }
                    Action::Become(p) => {
                        prop_assert!(m.phase.may_become(*p), "{:?} -> {:?}", m.phase, p);
                        m.phase = *p;
                    }
                }
                check_exclusive(&src, &dst, &slots)?;
                if matches!(f, Fault::After) {
                    m.phase = on_failure(m.phase);
                    break;
                }
                if m.cancel_requested && m.phase.may_become(MovePhase::RollingBack) {
                    m.phase = MovePhase::RollingBack;
                    break;
                }
            }
        }
        let owners: BTreeMap<u32, (bool, bool)> =
            slots.iter().map(|s| (*s, (src.check_write(*s).is_ok(), dst.check_write(*s).is_ok()))).collect();
        for (s, (on_src, on_dst)) in owners {
            prop_assert!(on_src != on_dst, "slot {} owned by both or neither", s);
            prop_assert_eq!(on_dst, m.phase == MovePhase::Done, "slot {} after {:?}", s, m.phase);
        }
        prop_assert!(src.settled() && dst.settled());
    }
}
