use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

const BUDGET: u64 = DEFAULT_STEP_BUDGET;

fn w(call: u64, ret: u64, v: u32) -> Op<u32> {
    Op::write(call, Some(ret), Some(v))
}

fn pending_w(call: u64, v: u32) -> Op<u32> {
    Op::write(call, None, Some(v))
}

fn r(call: u64, ret: u64, seen: Option<u32>) -> Op<u32> {
    Op::read(call, Some(ret), seen)
}

fn verdict(ops: &[Op<u32>]) -> KeyVerdict<u32> {
    check_key(None, ops, BUDGET)
}

fn violation(ops: &[Op<u32>]) -> Violation<u32> {
    match verdict(ops) {
        KeyVerdict::Violation(v) => v,
        other => panic!("expected a violation, got {other:?} for {ops:?}"),
    }
}

#[test]
fn a_lost_write_is_rejected() {
    let v = violation(&[w(0, 10, 1), r(20, 30, None)]);
    assert_eq!(v.stuck, r(20, 30, None));
    assert_eq!((v.ops, v.linearized), (2, 1));
}

#[test]
fn a_stale_read_is_rejected() {
    let v = violation(&[w(0, 10, 1), w(20, 30, 2), r(40, 50, Some(1))]);
    assert_eq!(v.stuck, r(40, 50, Some(1)));
}

#[test]
fn a_value_never_written_is_rejected() {
    violation(&[r(0, 10, Some(7))]);
    violation(&[w(0, 10, 1), r(0, 10, Some(7))]);
}

#[test]
fn a_reordering_is_rejected() {
    // Two concurrent writes; readers see 1, then 2, then 1 again.
    let ops = [w(0, 100, 1), w(0, 100, 2), r(10, 20, Some(1)), r(30, 40, Some(2)), r(50, 60, Some(1))];
    let v = violation(&ops);
    assert_eq!((v.linearized, v.stuck.call), (4, 50));
    assert_eq!(v.context, vec![w(0, 100, 1), w(0, 100, 2)], "the writes overlap the stuck read");
    // Reads that go backwards in time on one register.
    violation(&[w(0, 10, 1), w(20, 30, 2), r(40, 50, Some(2)), r(60, 70, Some(1))]);
}

#[test]
fn a_write_seen_then_unseen_is_rejected_even_when_pending() {
    violation(&[pending_w(0, 1), r(10, 20, Some(1)), r(30, 40, None)]);
}

#[test]
fn writes_seen_out_of_their_real_time_order_are_rejected() {
    violation(&[w(0, 10, 1), w(20, 30, 2), r(40, 50, Some(2)), r(40, 50, Some(1))]);
}

#[test]
fn pending_writes_may_land_late_or_never() {
    // Never seen.
    assert_eq!(verdict(&[w(0, 10, 1), pending_w(5, 2), r(20, 30, Some(1))]), KeyVerdict::Linearizable);
    // Seen long after a later acknowledged write: it landed late.
    let late = [pending_w(5, 2), w(20, 30, 3), r(40, 50, Some(3)), r(60, 70, Some(2)), r(80, 90, Some(2))];
    assert_eq!(verdict(&late), KeyVerdict::Linearizable);
    // But never before it was sent.
    violation(&[r(0, 4, Some(2)), pending_w(5, 2)]);
}

#[test]
fn concurrent_reads_may_see_either_side_of_a_write() {
    let ops = [w(0, 10, 1), w(20, 60, 2), r(30, 40, Some(1)), r(30, 40, Some(2)), r(50, 70, Some(2))];
    assert_eq!(verdict(&ops), KeyVerdict::Linearizable);
    // Once a read saw the new value, a read that starts after it returns must too.
    violation(&[w(0, 10, 1), w(20, 60, 2), r(25, 30, Some(2)), r(35, 40, Some(1))]);
}

#[test]
fn deletes_and_missing_keys() {
    let ops = [r(0, 1, None), w(2, 3, 1), Op::write(4, Some(5), None), r(6, 7, None)];
    assert_eq!(verdict(&ops), KeyVerdict::Linearizable);
    assert_eq!(check_key(Some(9), &[r(0, 1, Some(9))], BUDGET), KeyVerdict::Linearizable);
    assert!(matches!(check_key(Some(9), &[r(0, 1, None)], BUDGET), KeyVerdict::Violation(_)));
}

#[test]
fn pending_reads_and_empty_histories_constrain_nothing() {
    assert_eq!(verdict(&[]), KeyVerdict::Linearizable);
    assert_eq!(verdict(&[Op::read(0, None, Some(42))]), KeyVerdict::Linearizable);
}

#[test]
fn a_return_stamped_before_its_call_is_taken_as_instant() {
    assert_eq!(verdict(&[w(10, 5, 1), r(20, 30, Some(1))]), KeyVerdict::Linearizable);
}

#[test]
fn an_exhausted_budget_is_unknown_not_a_verdict() {
    // Many concurrent writes and a read no order explains: the search must
    // try every subset before giving up.
    let mut ops: Vec<Op<u32>> = (0..40).map(|i| w(0, 1000, i)).collect();
    ops.push(r(500, 600, Some(99)));
    assert_eq!(check_key(None, &ops, 1000), KeyVerdict::Unknown);
}

#[test]
fn long_sequential_histories_are_cheap() {
    // 20 000 operations, each overlapping its neighbours.
    let mut ops = Vec::new();
    for i in 0..10_000u64 {
        ops.push(w(i * 10, i * 10 + 15, i as u32));
        ops.push(r(i * 10 + 12, i * 10 + 18, Some(i as u32)));
    }
    assert_eq!(check_key(None, &ops, 1_000_000), KeyVerdict::Linearizable);
}

#[test]
fn a_history_is_checked_key_by_key() {
    let mut history = BTreeMap::new();
    history.insert("a", vec![w(0, 10, 1), r(20, 30, Some(1))]);
    history.insert("b", vec![w(0, 10, 1), r(20, 30, None), pending_w(40, 2)]);
    history.insert("c", vec![r(0, 10, None)]);
    let report = check_history(history, BUDGET);
    assert_eq!((report.keys, report.ops, report.pending_writes), (3, 6, 1));
    assert_eq!(report.violations.iter().map(|(k, _)| *k).collect::<Vec<_>>(), vec!["b"]);
    assert!(report.unknown.is_empty());
    assert!(!report.passed());
}

/// A register run one operation at a time at distinct instants, then each
/// operation's interval widened at random around its instant: always
/// linearizable, whatever the overlap, and with some writes left pending.
fn legal_history() -> impl Strategy<Value = Vec<Op<u32>>> {
    prop::collection::vec((any::<bool>(), 0u32..4, 0u64..60, 0u64..60, 0u8..10), 1..24).prop_map(|steps| {
        let mut state = None;
        let mut ops = Vec::new();
        for (i, (is_write, value, before, after, pend)) in steps.into_iter().enumerate() {
            let at = 100 + i as u64 * 20;
            let (call, ret) = (at - before.min(at), at + after);
            if is_write {
                state = Some(value);
                // A pending write still took effect at its instant.
                ops.push(Op::write(call, (pend != 0).then_some(ret), Some(value)));
            } else {
                ops.push(Op::read(call, Some(ret), state));
            }
        }
        ops
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn legal_histories_are_accepted(ops in legal_history()) {
        prop_assert_eq!(check_key(None, &ops, BUDGET), KeyVerdict::Linearizable);
    }

    /// The same histories with one read changed to a value nobody wrote.
    #[test]
    fn a_phantom_read_is_always_rejected(ops in legal_history(), pick in any::<prop::sample::Index>()) {
        let reads: Vec<usize> = (0..ops.len()).filter(|&i| matches!(ops[i].action, Action::Read(_))).collect();
        prop_assume!(!reads.is_empty());
        let mut ops = ops;
        let at = reads[pick.index(reads.len())];
        ops[at].action = Action::Read(Some(1000));
        prop_assert!(matches!(check_key(None, &ops, BUDGET), KeyVerdict::Violation(_)));
    }

    /// A checker that only compares against brute force: for tiny histories,
    /// try every permutation of the operations (with pending writes free to be
    /// left out) and see whether one respects real time and the register.
    #[test]
    fn agrees_with_brute_force(ops in prop::collection::vec(
        (any::<bool>(), 0u32..3, 0u64..40, 1u64..30, 0u8..6), 1..7
    ).prop_map(|raw| raw.into_iter().map(|(is_write, v, call, len, pend)| {
        let ret = (pend != 0).then_some(call + len);
        if is_write { Op::write(call, ret, Some(v)) } else { Op::read(call, Some(call + len), (v != 0).then_some(v)) }
    }).collect::<Vec<_>>())) {
        let expected = brute_force(&ops);
        let got = check_key(None, &ops, BUDGET);
        prop_assert_eq!(got == KeyVerdict::Linearizable, expected, "{:?} gave {:?}", ops, got);
    }
}

fn brute_force(ops: &[Op<u32>]) -> bool {
    fn go(ops: &[Op<u32>], used: &mut Vec<bool>, state: Option<u32>) -> bool {
        // Done when every returned operation is placed.
        if ops.iter().zip(used.iter()).all(|(op, &u)| u || op.ret.is_none()) {
            return true;
        }
        for i in 0..ops.len() {
            if used[i] {
                continue;
            }
            // Real time: no unplaced operation may have returned before i was called.
            let blocked =
                ops.iter().enumerate().any(|(j, o)| j != i && !used[j] && o.ret.is_some_and(|ret| ret < ops[i].call));
            if blocked {
                continue;
            }
            let next = match &ops[i].action {
                Action::Write(v) => *v,
                Action::Read(seen) if *seen == state => state,
                Action::Read(_) => continue,
            };
            used[i] = true;
            if go(ops, used, next) {
                return true;
            }
            used[i] = false;
        }
        false
    }
    go(ops, &mut vec![false; ops.len()], None)
}
