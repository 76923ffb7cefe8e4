//! Fair shares: how many of `total` units each of several holders should
//! get, in proportion to its weight, never above its cap.

/// One holder's share of the total, as a fraction `num / den`, with the
/// whole units below and above it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Share {
    pub num: u128,
    pub den: u128,
}

impl Share {
    pub fn floor(self) -> u64 {
        (self.num / self.den) as u64
    }

    pub fn ceil(self) -> u64 {
        self.num.div_ceil(self.den) as u64
    }
}

/// Split `total` over holders of `(weight, cap)` in proportion to weight;
/// a holder whose share would pass its cap gets exactly its cap, and the
/// rest is split again over the others (water-filling). `None` when the
/// caps together hold less than `total`. Holders of weight 0 get 0.
pub fn shares(total: u64, holders: &[(u64, u64)]) -> Option<Vec<Share>> {
    let capacity: u64 = holders.iter().filter(|(w, _)| *w > 0).map(|(_, c)| *c).sum();
    if capacity < total {
        return None;
    }
    let mut out: Vec<Option<Share>> =
        holders.iter().map(|(w, _)| (*w == 0).then_some(Share { num: 0, den: 1 })).collect();
    let mut left = u128::from(total);
    loop {
        let weight: u128 =
            holders.iter().zip(&out).filter(|(_, s)| s.is_none()).map(|((w, _), _)| u128::from(*w)).sum();
        if weight == 0 {
            break;
        }
        let over: Vec<usize> = (0..holders.len())
            .filter(|&i| out[i].is_none() && left * u128::from(holders[i].0) >= u128::from(holders[i].1) * weight)
            .collect();
        for &i in &over {
            out[i] = Some(Share { num: u128::from(holders[i].1), den: 1 });
            left -= u128::from(holders[i].1);
        }
        if over.is_empty() {
            for ((w, _), s) in holders.iter().zip(out.iter_mut()) {
                if s.is_none() {
                    *s = Some(Share { num: left * u128::from(*w), den: weight });
                }
            }
            break;
        }
    }
    Some(out.into_iter().map(|s| s.unwrap_or(Share { num: 0, den: 1 })).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(s: &[Share]) -> Vec<(u64, u64)> {
        s.iter().map(|s| (s.floor(), s.ceil())).collect()
    }

    #[test]
    fn equal_weights_split_evenly() {
        let s = shares(12, &[(1, 100); 5]).unwrap();
        assert_eq!(bounds(&s), vec![(2, 3); 5]);
        let s = shares(15, &[(1, 100); 5]).unwrap();
        assert_eq!(bounds(&s), vec![(3, 3); 5]);
    }

    #[test]
    fn weights_are_followed_and_caps_hold() {
        let s = shares(12, &[(2, 100), (1, 100), (1, 100)]).unwrap();
        assert_eq!(bounds(&s), vec![(6, 6), (3, 3), (3, 3)]);
        // The heavy holder is capped at 4; the rest is split by weight.
        let s = shares(12, &[(10, 4), (1, 100), (1, 100)]).unwrap();
        assert_eq!(bounds(&s), vec![(4, 4), (4, 4), (4, 4)]);
        assert_eq!(shares(12, &[(1, 4), (1, 4), (0, 100)]), None);
        let s = shares(3, &[(1, 5), (0, 5), (1, 5)]).unwrap();
        assert_eq!(bounds(&s), vec![(1, 2), (0, 0), (1, 2)]);
    }
}
