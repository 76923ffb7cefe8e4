//! BITFIELD and BITFIELD_RO: integers of 1 to 64 bits (63 unsigned) at any
//! bit offset of a string, read, set and incremented with Redis 7's
//! overflow rules (WRAP, SAT, FAIL) and error texts.

use serde::{Deserialize, Serialize};

use super::bits::MAX_BIT_OFFSET;
use super::command::is;
use super::integer::parse_i64;
use super::reply::Reply;

/// `i<bits>` or `u<bits>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldType {
    pub signed: bool,
    pub bits: u8,
}

/// What a SET or INCRBY does when the result does not fit its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Overflow {
    Wrap,
    Sat,
    /// Nothing is written and the reply is nil.
    Fail,
}

/// One operation of a BITFIELD, at a bit offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FieldOp {
    Get { ty: FieldType, offset: u64 },
    Set { ty: FieldType, offset: u64, value: i64, overflow: Overflow },
    IncrBy { ty: FieldType, offset: u64, incr: i64, overflow: Overflow },
}

fn field_type(arg: &[u8]) -> Result<FieldType, Reply> {
    let bad =
        || Reply::err("Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.");
    let signed = match arg.first() {
        Some(b'i') => true,
        Some(b'u') => false,
        _ => return Err(bad()),
    };
    let bits = parse_i64(&arg[1..]).ok_or_else(bad)?;
    if bits < 1 || bits > if signed { 64 } else { 63 } {
        return Err(bad());
    }
    Ok(FieldType { signed, bits: bits as u8 })
}

/// A bit offset, or `#n` for the n-th field of this type's width.
fn field_offset(arg: &[u8], bits: u8) -> Result<u64, Reply> {
    let (text, scale) = match arg.strip_prefix(b"#") {
        Some(rest) => (rest, i64::from(bits)),
        None => (arg, 1),
    };
    parse_i64(text)
        .and_then(|n| n.checked_mul(scale))
        .filter(|n| *n >= 0 && (*n as u64) < MAX_BIT_OFFSET)
        .map(|n| n as u64)
        .ok_or_else(|| Reply::err("bit offset is not an integer or out of range"))
}

/// The operations of `BITFIELD key ...` (`args` after the key). Only GET
/// for BITFIELD_RO (`read_only`).
pub fn parse_ops(args: &[Vec<u8>], read_only: bool) -> Result<Vec<FieldOp>, Reply> {
    let mut ops = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut i = 0;
    while i < args.len() {
        let left = args.len() - i - 1;
        let op = &args[i];
        if is(op, "OVERFLOW") && left >= 1 {
            overflow = match args[i + 1].to_ascii_uppercase().as_slice() {
                b"WRAP" => Overflow::Wrap,
                b"SAT" => Overflow::Sat,
                b"FAIL" => Overflow::Fail,
                _ => return Err(Reply::err("Invalid OVERFLOW type specified")),
            };
            i += 2;
            continue;
        }
        let get = is(op, "GET") && left >= 2;
        if !get && !((is(op, "SET") || is(op, "INCRBY")) && left >= 3) {
            return Err(Reply::syntax());
        }
        let ty = field_type(&args[i + 1])?;
        let offset = field_offset(&args[i + 2], ty.bits)?;
        if get {
            ops.push(FieldOp::Get { ty, offset });
            i += 3;
            continue;
        }
        let n = parse_i64(&args[i + 3]).ok_or_else(Reply::not_integer)?;
        ops.push(if is(op, "SET") {
            FieldOp::Set { ty, offset, value: n, overflow }
        } else {
            FieldOp::IncrBy { ty, offset, incr: n, overflow }
        });
        i += 4;
    }
    if read_only && ops.iter().any(|o| !matches!(o, FieldOp::Get { .. })) {
        return Err(Reply::err("BITFIELD_RO only supports the GET subcommand"));
    }
    Ok(ops)
}

/// Whether any operation writes.
pub fn writes(ops: &[FieldOp]) -> bool {
    ops.iter().any(|o| !matches!(o, FieldOp::Get { .. }))
}

/// The `bits` bits at `offset`, most significant first, as an unsigned
/// number; bits past the end of `value` are 0.
fn get_raw(value: &[u8], offset: u64, bits: u8) -> u64 {
    (0..u64::from(bits)).fold(0, |acc, j| (acc << 1) | u64::from(super::bits::get_bit(value, offset + j)))
}

fn put_raw(value: &mut Vec<u8>, offset: u64, bits: u8, raw: u64) {
    for j in 0..u64::from(bits) {
        let bit = (raw >> (u64::from(bits) - 1 - j)) & 1 == 1;
        super::bits::set_bit(value, offset + j, bit);
    }
}

fn get(value: &[u8], offset: u64, ty: FieldType) -> i64 {
    let raw = get_raw(value, offset, ty.bits);
    if ty.signed && ty.bits < 64 && raw >> (ty.bits - 1) & 1 == 1 {
        // Sign-extend.
        (raw | (u64::MAX << ty.bits)) as i64
    } else {
        raw as i64
    }
}

/// `sum` as the type holds it: `None` when it does not fit and the rule
/// is FAIL.
fn fit(sum: i128, ty: FieldType, overflow: Overflow) -> Option<i64> {
    let bits = u32::from(ty.bits);
    let (min, max) =
        if ty.signed { (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1) } else { (0, (1i128 << bits) - 1) };
    if (min..=max).contains(&sum) {
        return Some(sum as i64);
    }
    match overflow {
        Overflow::Fail => None,
        Overflow::Sat => Some(if sum > max { max } else { min } as i64),
        Overflow::Wrap => {
            let low = sum.rem_euclid(1i128 << bits);
            Some(if ty.signed && low > max { low - (1i128 << bits) } else { low } as i64)
        }
    }
}

/// Grow `value` to hold every field a write touches, as Redis does before
/// it runs them (even those that then fail).
pub fn grow_for_writes(value: &mut Vec<u8>, ops: &[FieldOp]) {
    let end = ops
        .iter()
        .filter_map(|o| match o {
            FieldOp::Get { .. } => None,
            FieldOp::Set { ty, offset, .. } | FieldOp::IncrBy { ty, offset, .. } => Some(offset + u64::from(ty.bits)),
        })
        .max();
    if let Some(bits) = end {
        let bytes = bits.div_ceil(8) as usize;
        if value.len() < bytes {
            value.resize(bytes, 0);
        }
    }
}

/// Run `ops` on `value` in order: one reply each, and how many writes
/// changed their field.
pub fn run(value: &mut Vec<u8>, ops: &[FieldOp]) -> (Vec<Reply>, u64) {
    let mut changed = 0;
    let mut write = |value: &mut Vec<u8>, offset: u64, ty: FieldType, old: i64, new: i64| {
        put_raw(value, offset, ty.bits, new as u64);
        if get(value, offset, ty) != old {
            changed += 1;
        }
    };
    let replies = ops
        .iter()
        .map(|op| match *op {
            FieldOp::Get { ty, offset } => Reply::Int(get(value, offset, ty)),
            FieldOp::Set { ty, offset, value: v, overflow } => {
                // An unsigned field reads the value as C's uint64 would.
                let n = if ty.signed { i128::from(v) } else { i128::from(v as u64) };
                let old = get(value, offset, ty);
                match fit(n, ty, overflow) {
                    Some(new) => {
                        write(value, offset, ty, old, new);
                        Reply::Int(old)
                    }
                    None => Reply::Nil,
                }
            }
            FieldOp::IncrBy { ty, offset, incr, overflow } => {
                let old = get(value, offset, ty);
                match fit(i128::from(old) + i128::from(incr), ty, overflow) {
                    Some(new) => {
                        write(value, offset, ty, old, new);
                        Reply::Int(new)
                    }
                    None => Reply::Nil,
                }
            }
        })
        .collect();
    (replies, changed)
}

/// How many of `ops`' writes were done (not refused by `OVERFLOW FAIL`),
/// given their replies.
pub fn writes_done(ops: &[FieldOp], replies: &[Reply]) -> u64 {
    ops.iter().zip(replies).filter(|(op, r)| !matches!(op, FieldOp::Get { .. }) && !matches!(r, Reply::Nil)).count()
        as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(s: &str) -> Result<Vec<FieldOp>, Reply> {
        let args: Vec<Vec<u8>> = s.split(' ').filter(|a| !a.is_empty()).map(|a| a.as_bytes().to_vec()).collect();
        parse_ops(&args, false)
    }

    fn exec(value: &mut Vec<u8>, s: &str) -> Vec<Reply> {
        let ops = ops(s).unwrap();
        grow_for_writes(value, &ops);
        run(value, &ops).0
    }

    #[test]
    fn fields_read_and_write_most_significant_bit_first() {
        let mut v = Vec::new();
        assert_eq!(exec(&mut v, "SET u8 0 255 GET u8 0 GET i8 0 GET u4 4"), [0, 255, -1, 15].map(Reply::Int));
        assert_eq!(v, [0xff]);
        // `#n`: the n-th field of the type's width; unaligned fields span bytes.
        assert_eq!(exec(&mut v, "SET u8 #1 170 GET u16 0 GET u3 7"), [0, 0xffaa, 0b110].map(Reply::Int));
        assert_eq!(exec(&mut Vec::new(), "INCRBY i64 0 -1 GET u63 1"), [-1, i64::MAX].map(Reply::Int));
    }

    #[test]
    fn overflow_wraps_saturates_or_fails() {
        let mut v = Vec::new();
        assert_eq!(exec(&mut v, "INCRBY u2 0 5 INCRBY i8 8 200"), [1, -56].map(Reply::Int));
        assert_eq!(exec(&mut v, "OVERFLOW SAT INCRBY u2 0 9 INCRBY i8 8 -1000"), [3, -128].map(Reply::Int));
        assert_eq!(
            exec(&mut v, "OVERFLOW FAIL INCRBY u2 0 1 SET u2 0 7 GET u2 0"),
            [Reply::Nil, Reply::Nil, Reply::Int(3)]
        );
        // SET answers the old value; a negative SET of an unsigned field is huge.
        assert_eq!(exec(&mut v, "OVERFLOW SAT SET u4 0 -1 GET u4 0"), [Reply::Int(12), Reply::Int(15)]);
        let mut v = Vec::new();
        assert_eq!(
            exec(&mut v, "SET i64 0 9223372036854775807 INCRBY i64 0 1 OVERFLOW SAT INCRBY i64 0 -1"),
            [Reply::Int(0), Reply::Int(i64::MIN), Reply::Int(i64::MIN)]
        );
    }

    #[test]
    fn writes_grow_the_string_even_when_they_fail() {
        let mut v = Vec::new();
        assert_eq!(exec(&mut v, "OVERFLOW FAIL SET u8 100 300"), [Reply::Nil]);
        assert_eq!(v.len(), 14);
        let mut v = Vec::new();
        assert_eq!(exec(&mut v, "GET u8 100"), [Reply::Int(0)]);
        assert!(v.is_empty(), "a read does not grow it");
    }

    #[test]
    fn bad_arguments_get_redis_errors() {
        let ty = "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";
        for bad in ["GET u64 0", "GET i65 0", "GET x8 0", "GET i0 0", "GET I8 0"] {
            assert_eq!(ops(bad), Err(Reply::Error(ty.into())), "{bad}");
        }
        let off = "ERR bit offset is not an integer or out of range";
        assert_eq!(ops("GET u8 -1"), Err(Reply::Error(off.into())));
        assert_eq!(ops("GET u8 4294967296"), Err(Reply::Error(off.into())));
        assert_eq!(ops("GET u8 #536870912"), Err(Reply::Error(off.into())));
        assert_eq!(ops("SET u8 0 x"), Err(Reply::not_integer()));
        assert_eq!(ops("OVERFLOW MAYBE"), Err(Reply::err("Invalid OVERFLOW type specified")));
        assert_eq!(ops("OVERFLOW"), Err(Reply::syntax()));
        assert_eq!(ops("GET u8"), Err(Reply::syntax()));
        assert_eq!(ops("FROB u8 0"), Err(Reply::syntax()));
        let set: Vec<Vec<u8>> = ["SET", "u8", "0", "1"].iter().map(|a| a.as_bytes().to_vec()).collect();
        assert_eq!(parse_ops(&set, true), Err(Reply::err("BITFIELD_RO only supports the GET subcommand")));
    }
}
