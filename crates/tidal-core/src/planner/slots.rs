//! Slots over a tenant's PRGs: each PRG within one of an even share, with
//! the fewest slots moved and, among those, the fewest bytes.

use std::collections::BTreeMap;

/// Slots that move from one PRG to another (PRG indices within the tenant).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotStep {
    pub from: u32,
    pub to: u32,
    /// In increasing order.
    pub slots: Vec<u32>,
    pub bytes: u64,
}

/// The moves that balance `owner` (slot → PRG index) over `prgs`, the
/// tenant's PRG indices after the change (new ones own nothing yet; a PRG
/// that owns slots and is not listed gives them all away). `bytes[slot]`
/// is what each slot holds, if known. Every listed PRG ends with ⌊S/k⌋ or
/// ⌈S/k⌉ slots; the PRGs that already hold the most keep the extra ones,
/// and the slots that leave a PRG are its smallest (then its highest, so
/// the slots a PRG gives away tend to be one range).
pub fn balance(owner: &[u32], prgs: &[u32], bytes: Option<&[u64]>) -> Vec<SlotStep> {
    if prgs.is_empty() {
        return Vec::new();
    }
    let size = |s: u32| bytes.and_then(|b| b.get(s as usize)).copied().unwrap_or(0);
    let mut held: BTreeMap<u32, Vec<u32>> = prgs.iter().map(|p| (*p, Vec::new())).collect();
    for (slot, p) in owner.iter().enumerate() {
        held.entry(*p).or_default().push(slot as u32);
    }
    let (total, k) = (owner.len(), prgs.len());
    let (base, extra) = (total / k, total % k);
    // Listed PRGs by slots held, most first: the first `extra` keep one more.
    let mut order: Vec<u32> = prgs.to_vec();
    order.sort_by_key(|p| (std::cmp::Reverse(held[p].len()), *p));
    let target: BTreeMap<u32, usize> =
        order.iter().enumerate().map(|(i, p)| (*p, base + usize::from(i < extra))).collect();
    // Slots given away, from each PRG over its target.
    let mut given: Vec<(u32, u32)> = Vec::new();
    for (p, slots) in &held {
        let keep = target.get(p).copied().unwrap_or(0);
        if slots.len() > keep {
            let mut s = slots.clone();
            s.sort_by_key(|&x| (size(x), std::cmp::Reverse(x)));
            given.extend(s[..slots.len() - keep].iter().map(|&x| (*p, x)));
        }
    }
    given.sort_by_key(|&(p, s)| (p, s));
    // Taken, in PRG order, by each PRG under its target.
    let mut steps: BTreeMap<(u32, u32), Vec<u32>> = BTreeMap::new();
    let mut next = given.into_iter();
    for p in prgs {
        let short = target[p].saturating_sub(held[p].len());
        for (from, slot) in next.by_ref().take(short) {
            steps.entry((from, *p)).or_default().push(slot);
        }
    }
    steps
        .into_iter()
        .map(|((from, to), slots)| {
            let bytes = slots.iter().map(|s| size(*s)).sum();
            SlotStep { from, to, slots, bytes }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn apply(owner: &[u32], steps: &[SlotStep]) -> Vec<u32> {
        let mut o = owner.to_vec();
        for s in steps {
            for &slot in &s.slots {
                assert_eq!(o[slot as usize], s.from, "slot {slot} moves from its owner");
                o[slot as usize] = s.to;
            }
        }
        o
    }

    #[test]
    fn doubling_the_prgs_moves_half_of_each() {
        // 16 slots on 2 PRGs, 8 each; PRGs 2 and 3 are new.
        let owner: Vec<u32> = (0..16).map(|s| s / 8).collect();
        let steps = balance(&owner, &[0, 1, 2, 3], None);
        let moved: usize = steps.iter().map(|s| s.slots.len()).sum();
        assert_eq!(moved, 8);
        let after = apply(&owner, &steps);
        for p in 0..4 {
            assert_eq!(after.iter().filter(|o| **o == p).count(), 4);
        }
        // Each gives away its highest slots, as one range.
        assert_eq!(steps[0], SlotStep { from: 0, to: 2, slots: vec![4, 5, 6, 7], bytes: 0 });
    }

    #[test]
    fn the_smallest_slots_move() {
        let owner = vec![0, 0, 0, 0];
        let bytes = [50, 10, 40, 20];
        let steps = balance(&owner, &[0, 1], Some(&bytes));
        assert_eq!(steps, vec![SlotStep { from: 0, to: 1, slots: vec![1, 3], bytes: 30 }]);
    }

    #[test]
    fn a_balanced_tenant_moves_nothing() {
        let owner: Vec<u32> = (0..10).map(|s| s % 3).collect();
        assert!(balance(&owner, &[0, 1, 2], None).is_empty());
    }

    proptest! {
        #[test]
        fn every_prg_ends_within_one_and_no_slot_moves_twice(
            owner in proptest::collection::vec(0u32..4, 1..64),
            new in 0u32..4,
        ) {
            let mut prgs: Vec<u32> = (0..4).collect();
            prgs.extend(4..4 + new);
            let steps = balance(&owner, &prgs, None);
            let after = apply(&owner, &steps);
            let counts: Vec<usize> = prgs.iter().map(|p| after.iter().filter(|o| *o == p).count()).collect();
            let (lo, hi) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
            prop_assert!(hi - lo <= 1, "{counts:?}");
            // The fewest moves: each PRG over its target gives exactly the excess.
            let k = prgs.len();
            let mut before: Vec<usize> = prgs.iter().map(|p| owner.iter().filter(|o| *o == p).count()).collect();
            before.sort_unstable_by(|a, b| b.cmp(a));
            let (base, extra) = (owner.len() / k, owner.len() % k);
            let least: usize = before.iter().enumerate().map(|(i, c)| c.saturating_sub(base + usize::from(i < extra))).sum();
            let moved: usize = steps.iter().map(|s| s.slots.len()).sum();
            prop_assert_eq!(moved, least);
            let mut slots: Vec<u32> = steps.iter().flat_map(|s| s.slots.clone()).collect();
            let n = slots.len();
            slots.sort_unstable();
            slots.dedup();
            prop_assert_eq!(slots.len(), n);
        }
    }
}
