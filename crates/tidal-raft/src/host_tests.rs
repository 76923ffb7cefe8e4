use proptest::prelude::*;

use super::*;
use crate::types::{CommittedLeaderId, LogId};

fn meta(index: u64) -> SnapshotMeta {
    SnapshotMeta {
        last_log_id: Some(LogId { leader_id: CommittedLeaderId { term: 1, node_id: 1 }, index }),
        ..Default::default()
    }
}

fn under_way(received: u64) -> Incoming {
    Incoming {
        vote: Vote::new(2, 1),
        meta: meta(10),
        received,
        staging: VecDeque::new(),
        started: tokio::time::Instant::now(),
    }
}

#[test]
fn a_piece_continues_only_the_same_transfer_where_it_stands() {
    let cur = under_way(100);
    assert_eq!(cur.refuse(&Vote::new(2, 1), &meta(10), 100, 50, None), None);
    assert_eq!(cur.refuse(&Vote::new(2, 1), &meta(10), 100, 50, Some(150)), None, "up to the limit is taken");

    let gap = cur.refuse(&Vote::new(2, 1), &meta(10), 120, 5, None).unwrap();
    assert!(gap.contains("does not continue") && gap.contains("100 bytes have been received"), "{gap}");
    let other_snapshot = cur.refuse(&Vote::new(2, 1), &meta(11), 100, 5, None).unwrap();
    assert!(other_snapshot.contains("of the snapshot up to"), "{other_snapshot}");
    let other_leader = cur.refuse(&Vote::new(3, 2), &meta(10), 100, 5, None).unwrap();
    assert!(other_leader.contains("under vote"), "{other_leader}");
    let too_big = cur.refuse(&Vote::new(2, 1), &meta(10), 100, 51, Some(150)).unwrap();
    assert!(too_big.contains("past 150 bytes"), "{too_big}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever offsets and sizes a sender claims, a transfer accepts
    /// exactly the pieces that continue it and never grows past its limit.
    #[test]
    fn accepted_pieces_stay_contiguous_and_within_the_limit(
        pieces in proptest::collection::vec((any::<u64>(), 0usize..1 << 20, any::<bool>()), 0..20),
        limit in proptest::option::of(0u64..8 << 20),
    ) {
        let mut cur = under_way(0);
        for (offset, len, honest) in pieces {
            let offset = if honest { cur.received } else { offset };
            match cur.refuse(&Vote::new(2, 1), &meta(10), offset, len, limit) {
                None => {
                    prop_assert_eq!(offset, cur.received);
                    cur.received += len as u64;
                    prop_assert!(limit.is_none_or(|l| cur.received <= l));
                }
                Some(why) => prop_assert!(offset != cur.received || limit.is_some(), "{}", why),
            }
        }
    }
}
