//! A minimal unsigned big integer, only as wide as the exact decimal ↔ binary
//! conversions of [`super::long_double`] need. Numbers are little-endian
//! 32-bit limbs with no trailing zero limbs, so equality is structural.

use std::cmp::Ordering;

/// An arbitrary-precision natural number.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct BigUint {
    limbs: Vec<u32>,
}

impl BigUint {
    pub(crate) fn from_u64(v: u64) -> Self {
        let mut n = BigUint { limbs: vec![v as u32, (v >> 32) as u32] };
        n.trim();
        n
    }

    #[cfg(test)]
    pub(crate) fn from_u128(v: u128) -> Self {
        let mut n = BigUint { limbs: (0..4).map(|i| (v >> (32 * i)) as u32).collect() };
        n.trim();
        n
    }

    fn trim(&mut self) {
        while self.limbs.last() == Some(&0) {
            self.limbs.pop();
        }
    }

    pub(crate) fn is_zero(&self) -> bool {
        self.limbs.is_empty()
    }

    /// Number of significant bits (0 for zero).
    pub(crate) fn bit_len(&self) -> u64 {
        match self.limbs.last() {
            None => 0,
            Some(top) => (self.limbs.len() as u64 - 1) * 32 + (32 - top.leading_zeros() as u64),
        }
    }

    pub(crate) fn bit(&self, i: u64) -> bool {
        let limb = (i / 32) as usize;
        limb < self.limbs.len() && (self.limbs[limb] >> (i % 32)) & 1 == 1
    }

    /// True when any bit below position `n` is set.
    pub(crate) fn any_bit_below(&self, n: u64) -> bool {
        let full = (n / 32) as usize;
        if self.limbs.iter().take(full).any(|&l| l != 0) {
            return true;
        }
        let rest = n % 32;
        rest != 0 && full < self.limbs.len() && self.limbs[full] & ((1u32 << rest) - 1) != 0
    }

    /// The low 64 bits.
    pub(crate) fn low_u64(&self) -> u64 {
        let lo = self.limbs.first().copied().unwrap_or(0) as u64;
        let hi = self.limbs.get(1).copied().unwrap_or(0) as u64;
        lo | (hi << 32)
    }

    pub(crate) fn mul_small(&mut self, m: u32) {
        let mut carry = 0u64;
        for l in &mut self.limbs {
            let v = *l as u64 * m as u64 + carry;
            *l = v as u32;
            carry = v >> 32;
        }
        if carry != 0 {
            self.limbs.push(carry as u32);
        }
        self.trim();
    }

    pub(crate) fn add_small(&mut self, a: u32) {
        let mut carry = a as u64;
        for l in &mut self.limbs {
            if carry == 0 {
                return;
            }
            let v = *l as u64 + carry;
            *l = v as u32;
            carry = v >> 32;
        }
        if carry != 0 {
            self.limbs.push(carry as u32);
        }
    }

    /// Divides in place by `d`, returning the remainder.
    pub(crate) fn div_small(&mut self, d: u32) -> u32 {
        let mut rem = 0u64;
        for l in self.limbs.iter_mut().rev() {
            let cur = (rem << 32) | *l as u64;
            *l = (cur / d as u64) as u32;
            rem = cur % d as u64;
        }
        self.trim();
        rem as u32
    }

    pub(crate) fn mul_pow10(&mut self, mut k: u64) {
        while k >= 9 {
            self.mul_small(1_000_000_000);
            k -= 9;
        }
        self.mul_small(10u32.pow(k as u32));
    }

    pub(crate) fn shl(&self, bits: u64) -> BigUint {
        if self.is_zero() {
            return BigUint::default();
        }
        let limbs = (bits / 32) as usize;
        let rest = (bits % 32) as u32;
        let mut out = vec![0u32; limbs];
        out.reserve(self.limbs.len() + 1);
        let mut carry = 0u32;
        for &l in &self.limbs {
            if rest == 0 {
                out.push(l);
            } else {
                out.push((l << rest) | carry);
                carry = l >> (32 - rest);
            }
        }
        if carry != 0 {
            out.push(carry);
        }
        BigUint { limbs: out }
    }

    pub(crate) fn shr(&self, bits: u64) -> BigUint {
        let limbs = (bits / 32) as usize;
        if limbs >= self.limbs.len() {
            return BigUint::default();
        }
        let rest = (bits % 32) as u32;
        let src = &self.limbs[limbs..];
        let mut out = Vec::with_capacity(src.len());
        for i in 0..src.len() {
            let lo = src[i] >> rest;
            let hi = if rest == 0 { 0 } else { src.get(i + 1).map_or(0, |&h| h << (32 - rest)) };
            out.push(lo | hi);
        }
        let mut n = BigUint { limbs: out };
        n.trim();
        n
    }

    pub(crate) fn add(&self, other: &BigUint) -> BigUint {
        let (long, short) = if self.limbs.len() >= other.limbs.len() { (self, other) } else { (other, self) };
        let mut out = Vec::with_capacity(long.limbs.len() + 1);
        let mut carry = 0u64;
        for i in 0..long.limbs.len() {
            let v = long.limbs[i] as u64 + short.limbs.get(i).copied().unwrap_or(0) as u64 + carry;
            out.push(v as u32);
            carry = v >> 32;
        }
        if carry != 0 {
            out.push(carry as u32);
        }
        BigUint { limbs: out }
    }

    /// `self - other`; the caller guarantees `self >= other`.
    pub(crate) fn sub(&self, other: &BigUint) -> BigUint {
        debug_assert!(self.cmp(other) != Ordering::Less);
        let mut out = Vec::with_capacity(self.limbs.len());
        let mut borrow = 0i64;
        for i in 0..self.limbs.len() {
            let mut v = self.limbs[i] as i64 - other.limbs.get(i).copied().unwrap_or(0) as i64 - borrow;
            borrow = if v < 0 {
                v += 1 << 32;
                1
            } else {
                0
            };
            out.push(v as u32);
        }
        let mut n = BigUint { limbs: out };
        n.trim();
        n
    }

    /// Quotient and remainder of `self / d` (`d` non-zero), by binary long
    /// division. Cheap when the quotient is short, which is the only way
    /// [`super::long_double`] uses it.
    pub(crate) fn div_rem(&self, d: &BigUint) -> (BigUint, BigUint) {
        debug_assert!(!d.is_zero());
        if self.cmp(d) == Ordering::Less {
            return (BigUint::default(), self.clone());
        }
        let shift = self.bit_len() - d.bit_len();
        let mut rem = self.clone();
        let mut quot = BigUint::default();
        for i in (0..=shift).rev() {
            let part = d.shl(i);
            if rem.cmp(&part) != Ordering::Less {
                rem = rem.sub(&part);
                quot = quot.add(&BigUint::from_u64(1).shl(i));
            }
        }
        (quot, rem)
    }

    /// Decimal digits, most significant first ("0" for zero).
    pub(crate) fn to_decimal(&self) -> String {
        if self.is_zero() {
            return "0".to_string();
        }
        let mut n = self.clone();
        let mut chunks = Vec::new();
        while !n.is_zero() {
            chunks.push(n.div_small(1_000_000_000));
        }
        let mut s = chunks.pop().map(|c| c.to_string()).unwrap_or_default();
        for c in chunks.iter().rev() {
            s.push_str(&format!("{c:09}"));
        }
        s
    }
}

impl Ord for BigUint {
    fn cmp(&self, other: &Self) -> Ordering {
        self.limbs.len().cmp(&other.limbs.len()).then_with(|| self.limbs.iter().rev().cmp(other.limbs.iter().rev()))
    }
}

impl PartialOrd for BigUint {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decimal_of_powers() {
        let mut n = BigUint::from_u64(1);
        n.mul_pow10(30);
        assert_eq!(n.to_decimal(), format!("1{}", "0".repeat(30)));
        assert_eq!(BigUint::default().to_decimal(), "0");
    }

    #[test]
    fn bits() {
        let n = BigUint::from_u64(0b1011).shl(40);
        assert_eq!(n.bit_len(), 44);
        assert!(n.bit(40) && !n.bit(42) && n.bit(43));
        assert!(!n.any_bit_below(40));
        assert!(n.any_bit_below(41));
        assert_eq!(n.shr(40).low_u64(), 0b1011);
    }

    proptest! {
        #[test]
        fn matches_u128(a in any::<u64>(), b in any::<u64>(), s in 0u64..60) {
            let (x, y) = (BigUint::from_u64(a), BigUint::from_u64(b));
            prop_assert_eq!(x.add(&y), BigUint::from_u128(a as u128 + b as u128));
            let (hi, lo) = if a >= b { (a, b) } else { (b, a) };
            prop_assert_eq!(BigUint::from_u64(hi).sub(&BigUint::from_u64(lo)), BigUint::from_u64(hi - lo));
            prop_assert_eq!(x.shl(s), BigUint::from_u128((a as u128) << s));
            prop_assert_eq!(x.shr(s), BigUint::from_u64(a >> s));
            prop_assert_eq!(x.to_decimal(), a.to_string());
            if b != 0 {
                let wide = BigUint::from_u128((a as u128) << 40 | 12345);
                let (q, r) = wide.div_rem(&y);
                let w = (a as u128) << 40 | 12345;
                prop_assert_eq!(q, BigUint::from_u128(w / b as u128));
                prop_assert_eq!(r, BigUint::from_u128(w % b as u128));
            }
        }
    }
}
