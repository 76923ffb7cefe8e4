//! The number type behind INCRBYFLOAT.
//!
//! Redis does INCRBYFLOAT in the C `long double` of x86-64: a binary float
//! with a 64-bit significand and a 15-bit exponent. It parses both operands
//! with `strtold`, adds them once, and stores the sum printed as `%.17Lf`
//! with trailing zeros removed. Clients see those exact digits (`10.5 + 0.1`
//! gives `10.6` but `1000.1 + 0.01` gives `1000.10999999999999999`), so tidal
//! reproduces the whole pipeline in software: correctly rounded parsing,
//! one correctly rounded addition, and exact decimal printing. It is
//! deterministic on every platform, which replicated state machines need.

use super::big_uint::BigUint;

/// Exponent of the least significant significand bit for the smallest
/// subnormal, `2^-16445`.
const EXP_MIN: i64 = -16445;
/// Largest exponent of the least significant significand bit.
const EXP_MAX: i64 = 16320;
/// Redis refuses float arguments this long or longer (`MAX_LONG_DOUBLE_CHARS`).
const MAX_CHARS: usize = 5 * 1024;

/// Why a float increment is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Increment {
    /// The stored value or the increment is not a float.
    NotFloat,
    /// The sum would be infinite or NaN.
    NotFinite,
}

/// The reply to a refused float increment; `not_float` is the command's
/// text for a value that is not a float.
pub(crate) fn increment_error(e: Increment, not_float: super::reply::Reply) -> super::reply::Reply {
    match e {
        Increment::NotFloat => not_float,
        Increment::NotFinite => super::reply::Reply::err("increment would produce NaN or Infinity"),
    }
}

/// A finite extended-precision value `±mant · 2^exp`, or an infinity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum LongDouble {
    Finite { neg: bool, mant: u64, exp: i64 },
    Inf { neg: bool },
}

impl LongDouble {
    fn zero(neg: bool) -> Self {
        LongDouble::Finite { neg, mant: 0, exp: 0 }
    }

    /// Parses `text` the way Redis' `string2ld` does: the whole input must be
    /// a `strtold` number (decimal, `0x` hex float, `inf`/`infinity`), with no
    /// leading space, and must neither overflow nor underflow to zero.
    /// Returns `None` for anything Redis calls "not a valid float".
    pub(crate) fn parse(text: &[u8]) -> Option<Self> {
        if text.is_empty() || text.len() >= MAX_CHARS {
            return None;
        }
        // Redis 7.0 wants strtold to read the whole string: a NUL inside
        // it (where strtold stops) makes it no number at all.
        if text.contains(&0) {
            return None;
        }
        let (neg, body) = match text.first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let lower = body.to_ascii_lowercase();
        if lower == b"inf" || lower == b"infinity" {
            return Some(LongDouble::Inf { neg });
        }
        let value = if lower.starts_with(b"0x") { parse_hex(&body[2..], neg)? } else { parse_decimal(body, neg)? };
        Some(value)
    }

    /// INCRBYFLOAT's and HINCRBYFLOAT's sum: the stored text (0 when
    /// absent) plus the increment's, in Redis's rendering.
    pub(crate) fn increment(current: Option<&[u8]>, delta: &[u8]) -> Result<Vec<u8>, Increment> {
        let (Some(current), Some(delta)) = (LongDouble::parse(current.unwrap_or(b"0")), LongDouble::parse(delta))
        else {
            return Err(Increment::NotFloat);
        };
        let sum = current.add(delta).ok_or(Increment::NotFinite)?;
        Ok(sum.to_human().into_bytes())
    }

    /// `self + other`, rounded once to nearest-even; `None` if the result is
    /// infinite or NaN, which INCRBYFLOAT refuses to store.
    pub(crate) fn add(self, other: Self) -> Option<Self> {
        let (LongDouble::Finite { neg: an, mant: am, exp: ae }, LongDouble::Finite { neg: bn, mant: bm, exp: be }) =
            (self, other)
        else {
            return None;
        };
        if am == 0 {
            return Some(if bm == 0 { Self::zero(an && bn) } else { other });
        }
        if bm == 0 {
            return Some(self);
        }
        let base = ae.min(be);
        let a = BigUint::from_u64(am).shl((ae - base) as u64);
        let b = BigUint::from_u64(bm).shl((be - base) as u64);
        let (sum, neg) = if an == bn {
            (a.add(&b), an)
        } else if a >= b {
            (a.sub(&b), an)
        } else {
            (b.sub(&a), bn)
        };
        if sum.is_zero() {
            return Some(Self::zero(false));
        }
        match round(&sum, base, neg) {
            v @ LongDouble::Finite { .. } => Some(v),
            LongDouble::Inf { .. } => None,
        }
    }

    /// Redis' "human" rendering: `%.17Lf`, trailing zeros and a bare point
    /// removed, and `-0` written as `0`. Infinities never reach storage, but
    /// render as `inf`/`-inf` like Redis for completeness.
    pub(crate) fn to_human(self) -> String {
        let (neg, mant, exp) = match self {
            LongDouble::Inf { neg } => return if neg { "-inf" } else { "inf" }.to_string(),
            LongDouble::Finite { neg, mant, exp } => (neg, mant, exp),
        };
        let mut scaled = BigUint::from_u64(mant);
        scaled.mul_pow10(17);
        let units = if exp >= 0 {
            scaled.shl(exp as u64)
        } else {
            let s = (-exp) as u64;
            let mut q = scaled.shr(s);
            let half = scaled.bit(s - 1);
            let more = scaled.any_bit_below(s - 1);
            if half && (more || q.bit(0)) {
                q.add_small(1);
            }
            q
        };
        let digits = units.to_decimal();
        let digits = format!("{digits:0>18}");
        let (int, frac) = digits.split_at(digits.len() - 17);
        let frac = frac.trim_end_matches('0');
        let mut out = String::with_capacity(digits.len() + 2);
        if neg {
            out.push('-');
        }
        out.push_str(int);
        if !frac.is_empty() {
            out.push('.');
            out.push_str(frac);
        }
        if out == "-0" {
            out = "0".to_string();
        }
        out
    }
}

/// Rounds `n · 2^e2` to the nearest representable value, ties to even,
/// with gradual underflow and overflow to infinity.
fn round(n: &BigUint, e2: i64, neg: bool) -> LongDouble {
    if n.is_zero() {
        return LongDouble::zero(neg);
    }
    let bits = n.bit_len() as i64;
    let mut exp = (e2 + bits - 64).max(EXP_MIN);
    let shift = exp - e2;
    let mut mant;
    if shift <= 0 {
        mant = n.shl((-shift) as u64).low_u64();
    } else {
        let s = shift as u64;
        mant = n.shr(s).low_u64();
        let half = n.bit(s - 1);
        let more = n.any_bit_below(s - 1);
        if half && (more || mant & 1 == 1) {
            match mant.checked_add(1) {
                Some(m) => mant = m,
                None => {
                    mant = 1 << 63;
                    exp += 1;
                }
            }
        }
    }
    if exp > EXP_MAX {
        return LongDouble::Inf { neg };
    }
    LongDouble::Finite { neg, mant, exp }
}

/// Accepts a finite parse result only if it neither overflowed nor
/// underflowed to zero (strtold's ERANGE cases that Redis rejects).
fn in_range(v: LongDouble) -> Option<LongDouble> {
    match v {
        LongDouble::Finite { mant: 0, .. } | LongDouble::Inf { .. } => None,
        v => Some(v),
    }
}

fn is_digit(b: &u8) -> bool {
    b.is_ascii_digit()
}

/// Parses an optional exponent suffix (`e12`, `p-3`, ...) that must use the
/// whole of `rest`. Saturates: anything this large over- or underflows.
fn parse_exponent(rest: &[u8], marker: u8) -> Option<i64> {
    if rest.is_empty() {
        return Some(0);
    }
    if rest[0].to_ascii_lowercase() != marker {
        return None;
    }
    let (neg, digits) = match rest.get(1) {
        Some(b'-') => (true, &rest[2..]),
        Some(b'+') => (false, &rest[2..]),
        _ => (false, &rest[1..]),
    };
    if digits.is_empty() || !digits.iter().all(is_digit) {
        return None;
    }
    let mag = digits.iter().fold(0i64, |acc, d| (acc * 10 + (d - b'0') as i64).min(1 << 40));
    Some(if neg { -mag } else { mag })
}

fn parse_decimal(body: &[u8], neg: bool) -> Option<LongDouble> {
    let int_len = body.iter().take_while(|b| is_digit(b)).count();
    let (int, rest) = body.split_at(int_len);
    let (frac, rest) = match rest.first() {
        Some(b'.') => {
            let n = rest[1..].iter().take_while(|b| is_digit(b)).count();
            (&rest[1..1 + n], &rest[1 + n..])
        }
        _ => (&rest[..0], rest),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let exp10 = parse_exponent(rest, b'e')? - frac.len() as i64;
    let digits: Vec<u8> = int.iter().chain(frac).copied().skip_while(|&d| d == b'0').collect();
    if digits.is_empty() {
        return Some(LongDouble::zero(neg));
    }
    // Decimal exponent of the leading digit: far enough outside the range
    // of ±1.19e4932 (and the 3.6e-4951 smallest subnormal) to decide early.
    let lead = exp10 + digits.len() as i64 - 1;
    if !(-4952..=4933).contains(&lead) {
        return None;
    }
    let mut n = BigUint::default();
    for chunk in digits.chunks(9) {
        n.mul_pow10(chunk.len() as u64);
        let v = chunk.iter().fold(0u32, |acc, d| acc * 10 + (d - b'0') as u32);
        n.add_small(v);
    }
    if exp10 >= 0 {
        n.mul_pow10(exp10 as u64);
        return in_range(round(&n, 0, neg));
    }
    let mut pow = BigUint::from_u64(1);
    pow.mul_pow10((-exp10) as u64);
    // Scale so the quotient carries at least 66 bits; the remainder folds
    // into its lowest bit as a sticky flag for correct rounding.
    let t = (66 + pow.bit_len() as i64 - n.bit_len() as i64).max(0) as u64;
    let (mut q, r) = n.shl(t).div_rem(&pow);
    if !r.is_zero() && !q.bit(0) {
        q.add_small(1);
    }
    in_range(round(&q, -(t as i64), neg))
}

fn parse_hex(body: &[u8], neg: bool) -> Option<LongDouble> {
    let int_len = body.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let (int, rest) = body.split_at(int_len);
    let (frac, rest) = match rest.first() {
        Some(b'.') => {
            let n = rest[1..].iter().take_while(|b| b.is_ascii_hexdigit()).count();
            (&rest[1..1 + n], &rest[1 + n..])
        }
        _ => (&rest[..0], rest),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let exp2 = parse_exponent(rest, b'p')? - 4 * frac.len() as i64;
    let mut n = BigUint::default();
    for d in int.iter().chain(frac) {
        n.mul_small(16);
        n.add_small((*d as char).to_digit(16).unwrap_or(0));
    }
    if n.is_zero() {
        return Some(LongDouble::zero(neg));
    }
    let lead = exp2 + n.bit_len() as i64 - 1;
    if !(EXP_MIN - 1..=16383).contains(&lead) {
        return None;
    }
    in_range(round(&n, exp2, neg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn incr(a: &str, b: &str) -> Option<String> {
        let a = LongDouble::parse(a.as_bytes()).expect("a parses");
        let b = LongDouble::parse(b.as_bytes()).expect("b parses");
        a.add(b).map(LongDouble::to_human)
    }

    /// Outputs recorded from Redis 7.0 on x86-64.
    #[test]
    fn matches_redis_sums() {
        assert_eq!(incr("10.50", "0.1").unwrap(), "10.6");
        assert_eq!(incr("0.1", "0.2").unwrap(), "0.3");
        assert_eq!(incr("100", "0.1").unwrap(), "100.1");
        assert_eq!(incr("1000.1", "0.01").unwrap(), "1000.10999999999999999");
        assert_eq!(incr("1e30", "0").unwrap(), "1000000000000000000024696061952");
        assert_eq!(incr("5.0e3", "2.0e2").unwrap(), "5200");
        assert_eq!(incr("0", "0.000003814697265625").unwrap(), "0.00000381469726562");
        assert_eq!(incr("0", "0x1p-18").unwrap(), "0.00000381469726562");
        assert_eq!(incr("0", "0x1.8p3").unwrap(), "12");
        assert_eq!(incr("0", ".5").unwrap(), "0.5");
        assert_eq!(incr("0.5", "5.").unwrap(), "5.5");
        assert_eq!(incr("0", "+.5e+1").unwrap(), "5");
        assert_eq!(incr("0", "-0.0").unwrap(), "0");
        assert_eq!(incr("0", "1e-4940").unwrap(), "0");
        assert_eq!(incr("0", "-12345678901234567890.123").unwrap(), "-12345678901234567890");
        assert_eq!(incr("0", "3.0000000000000000001").unwrap(), "3");
        assert_eq!(incr("-1.5", "1.5").unwrap(), "0");
        let big = incr("0", "1e4000").unwrap();
        assert!(big.starts_with("99999999999999999999654638730996237849324925835069"));
        assert_eq!(big.len(), 4000);
    }

    #[test]
    fn rejects_what_redis_rejects() {
        for bad in [
            "", " 1", "1 ", "1.5e", "1.5p3", "0x", "abc", "nan", "-nan", "1e-5000", "1e5000", "1.2e4932", "infx",
            "--1", ".", "e5", "0x1p", "1..2",
        ] {
            assert_eq!(LongDouble::parse(bad.as_bytes()), None, "{bad:?}");
        }
        assert_eq!(LongDouble::parse(&vec![b'1'; MAX_CHARS]), None);
        assert!(LongDouble::parse(&vec![b'1'; 4000]).is_some());
        assert!(LongDouble::parse(b"1e4932").is_some());
    }

    #[test]
    fn infinities_parse_but_never_add() {
        for inf in ["inf", "-INF", "Infinity", "+infinity"] {
            assert!(matches!(LongDouble::parse(inf.as_bytes()), Some(LongDouble::Inf { .. })));
        }
        let one = LongDouble::parse(b"1").unwrap();
        assert_eq!(one.add(LongDouble::parse(b"inf").unwrap()), None);
        let max = LongDouble::parse(b"1.1e4932").unwrap();
        assert_eq!(max.add(max), None);
    }

    /// As Debian's redis-server 7.0.15 answers: `SET k "301\0"` then
    /// `INCRBYFLOAT k 1.5` is "value is not a valid float".
    #[test]
    fn a_nul_inside_makes_it_no_number() {
        assert_eq!(LongDouble::parse(b"1.5\0junk"), None);
        assert_eq!(LongDouble::parse(b"301\0"), None);
        assert!(LongDouble::parse(b"301").is_some());
    }

    proptest! {
        /// Integers below 2^64 are exact, so sums of them must print exactly.
        #[test]
        fn integer_sums_are_exact(a in -(1i64 << 62)..(1i64 << 62), b in -(1i64 << 62)..(1i64 << 62)) {
            let sum = incr(&a.to_string(), &b.to_string()).unwrap();
            prop_assert_eq!(sum, (a as i128 + b as i128).to_string());
        }

        /// Every f64 is a long double; printing it must agree with Rust's
        /// exact decimal expansion rounded to 17 places.
        #[test]
        fn f64_values_print_like_fixed_17(x in -1e6f64..1e6) {
            let bits = x.to_bits();
            let biased = ((bits >> 52) & 0x7ff) as i64;
            let frac = bits & ((1 << 52) - 1);
            let (mant, exp) = if biased == 0 { (frac, -1074) } else { (frac | 1 << 52, biased - 1075) };
            let sign = if x.is_sign_negative() { "-" } else { "" };
            let text = format!("{sign}0x{mant:x}p{exp}");
            let printed = LongDouble::parse(text.as_bytes()).unwrap().to_human();
            let expected = format!("{x:.17}");
            let expected = expected.trim_end_matches('0').trim_end_matches('.');
            let expected = if expected == "-0" { "0" } else { expected };
            prop_assert_eq!(printed, expected);
        }
    }
}
