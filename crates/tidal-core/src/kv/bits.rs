//! Bit and sequence commands on string values: SETBIT, GETBIT, BITCOUNT,
//! BITPOS, BITOP and LCS, with Redis 7's range rules and error texts.
//! Pure functions over byte strings; the engine reads and writes records.

use serde::{Deserialize, Serialize};

use super::reply::Reply;

/// Bits a string may hold: Redis's `proto-max-bulk-len` (512 MB) in bits.
pub const MAX_BIT_OFFSET: u64 = 512 * 1024 * 1024 * 8;

/// BITOP's operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BitOpKind {
    And,
    Or,
    Xor,
    Not,
}

/// A BITCOUNT or BITPOS range: `start` and `end` (inclusive, negative from
/// the end) in bytes, or in bits when `bits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BitRange {
    pub start: i64,
    /// `None`: to the end (BITPOS with a start only).
    pub end: Option<i64>,
    pub bits: bool,
}

/// What LCS answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LcsMode {
    pub len: bool,
    pub idx: bool,
    pub min_match_len: u64,
    pub with_match_len: bool,
}

/// The bit at `offset` (0 is the most significant bit of the first byte).
pub fn get_bit(value: &[u8], offset: u64) -> u8 {
    let byte = (offset >> 3) as usize;
    value.get(byte).map_or(0, |b| (b >> (7 - (offset & 7))) & 1)
}

/// Set the bit at `offset` to `bit`, growing `value` with zero bytes;
/// returns the bit it had.
pub fn set_bit(value: &mut Vec<u8>, offset: u64, bit: bool) -> u8 {
    let byte = (offset >> 3) as usize;
    if value.len() <= byte {
        value.resize(byte + 1, 0);
    }
    let mask = 1u8 << (7 - (offset & 7));
    let old = u8::from(value[byte] & mask != 0);
    if bit {
        value[byte] |= mask;
    } else {
        value[byte] &= !mask;
    }
    old
}

/// The inclusive bit range a BITCOUNT/BITPOS range covers in a value of
/// `len` bytes, after Redis's clamping; `None` when it is empty. For a
/// range without an end, `end` is the last bit.
fn bit_span(len: usize, r: BitRange) -> Option<(u64, u64)> {
    let total = if r.bits { len as i64 * 8 } else { len as i64 };
    let (mut start, mut end) = (r.start, r.end.unwrap_or(total - 1));
    if start < 0 {
        start += total;
    }
    if end < 0 {
        end += total;
    }
    let start = start.max(0);
    let end = end.max(0).min(total - 1);
    if start > end || total == 0 {
        return None;
    }
    Some(if r.bits { (start as u64, end as u64) } else { (start as u64 * 8, end as u64 * 8 + 7) })
}

/// BITCOUNT over `range` (the whole value when `None`).
pub fn bit_count(value: &[u8], range: Option<BitRange>) -> i64 {
    let Some(r) = range else {
        return value.iter().map(|b| i64::from(b.count_ones())).sum();
    };
    // Redis answers 0 at once for two negative indexes out of order.
    if r.start < 0 && r.end.is_some_and(|e| e < 0 && r.start > e) {
        return 0;
    }
    let Some((lo, hi)) = bit_span(value.len(), r) else { return 0 };
    let (first, last) = ((lo >> 3) as usize, (hi >> 3) as usize);
    let mut n: i64 = value[first..=last].iter().map(|b| i64::from(b.count_ones())).sum();
    // Leave out the bits of the edge bytes outside the range.
    let head = (lo & 7) as u32;
    if head > 0 {
        n -= i64::from((value[first] >> (8 - head)).count_ones());
    }
    let tail = 7 - (hi & 7) as u32;
    if tail > 0 {
        n -= i64::from((value[last] & ((1u8 << tail) - 1)).count_ones());
    }
    n
}

/// BITPOS of `bit` in `value` (`None`: the key does not exist).
pub fn bit_pos(value: Option<&[u8]>, bit: bool, range: Option<BitRange>) -> i64 {
    let Some(value) = value else {
        // An absent key is an endless run of zeros.
        return if bit { -1 } else { 0 };
    };
    let end_given = range.is_some_and(|r| r.end.is_some());
    let r = range.unwrap_or(BitRange { start: 0, end: None, bits: false });
    let Some((lo, hi)) = bit_span(value.len(), r) else { return -1 };
    let skip = if bit { 0x00 } else { 0xFF };
    let mut pos = lo;
    while pos <= hi {
        if pos & 7 == 0 && pos + 7 <= hi && value[(pos >> 3) as usize] == skip {
            pos += 8;
            continue;
        }
        if (get_bit(value, pos) == 1) == bit {
            return pos as i64;
        }
        pos += 1;
    }
    // Looking for a clear bit without an end: the zeros after the string.
    if !bit && !end_given {
        (hi + 1) as i64
    } else {
        -1
    }
}

/// BITOP over `sources` (absent keys are empty strings): the result, as
/// long as the longest source.
pub fn bit_op(op: BitOpKind, sources: &[Vec<u8>]) -> Vec<u8> {
    let len = sources.iter().map(Vec::len).max().unwrap_or(0);
    let byte = |s: &Vec<u8>, i: usize| s.get(i).copied().unwrap_or(0);
    (0..len)
        .map(|i| match op {
            BitOpKind::Not => !byte(&sources[0], i),
            BitOpKind::And => sources.iter().fold(0xFF, |acc, s| acc & byte(s, i)),
            BitOpKind::Or => sources.iter().fold(0, |acc, s| acc | byte(s, i)),
            BitOpKind::Xor => sources.iter().fold(0, |acc, s| acc ^ byte(s, i)),
        })
        .collect()
}

/// Most bytes LCS's table may take, as Redis bounds it by
/// `proto-max-bulk-len`.
const MAX_LCS_TABLE: u64 = 512 * 1024 * 1024;

/// LCS of `a` and `b` (absent keys are empty strings), in the form `mode`
/// asks for; the matches are listed from the end of the strings, as Redis
/// lists them.
pub fn lcs(a: &[u8], b: &[u8], mode: LcsMode) -> Reply {
    let (alen, blen) = (a.len(), b.len());
    if (alen as u64 + 1) * (blen as u64 + 1) * 4 > MAX_LCS_TABLE {
        return Reply::err("Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len");
    }
    let w = blen + 1;
    let mut dp = vec![0u32; (alen + 1) * w];
    for i in 1..=alen {
        for j in 1..=blen {
            dp[i * w + j] = if a[i - 1] == b[j - 1] {
                dp[(i - 1) * w + j - 1] + 1
            } else {
                dp[(i - 1) * w + j].max(dp[i * w + j - 1])
            };
        }
    }
    let total = dp[alen * w + blen];
    if mode.len && !mode.idx {
        return Reply::Int(i64::from(total));
    }
    let mut result = vec![0u8; total as usize];
    let mut matches = Vec::new();
    let (mut i, mut j, mut idx) = (alen, blen, total as usize);
    // `a_start == alen`: no range is open.
    let (mut a_start, mut a_end, mut b_start, mut b_end) = (alen, 0, 0, 0);
    while i > 0 && j > 0 {
        let mut emit = false;
        if a[i - 1] == b[j - 1] {
            result[idx - 1] = a[i - 1];
            if a_start == alen {
                (a_start, a_end, b_start, b_end) = (i - 1, i - 1, j - 1, j - 1);
            } else if a_start == i && b_start == j {
                a_start -= 1;
                b_start -= 1;
            } else {
                emit = true;
            }
            if a_start == 0 || b_start == 0 {
                emit = true;
            }
            idx -= 1;
            i -= 1;
            j -= 1;
        } else {
            if dp[(i - 1) * w + j] > dp[i * w + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
            if a_start != alen {
                emit = true;
            }
        }
        if emit {
            let len = (a_end - a_start + 1) as u64;
            if mode.min_match_len == 0 || len >= mode.min_match_len {
                let range = |s: usize, e: usize| Reply::Array(vec![Reply::Int(s as i64), Reply::Int(e as i64)]);
                let mut m = vec![range(a_start, a_end), range(b_start, b_end)];
                if mode.with_match_len {
                    m.push(Reply::Int(len as i64));
                }
                matches.push(Reply::Array(m));
            }
            a_start = alen;
        }
    }
    if mode.idx {
        Reply::Map(vec![
            (Reply::bulk("matches"), Reply::Array(matches)),
            (Reply::bulk("len"), Reply::Int(i64::from(total))),
        ])
    } else {
        Reply::Bulk(result)
    }
}

#[cfg(test)]
#[path = "bits_tests.rs"]
mod tests;
