//! Expected values are Redis 7.0's answers to the same commands.

use super::*;

fn r(start: i64, end: Option<i64>, bits: bool) -> Option<BitRange> {
    Some(BitRange { start, end, bits })
}

#[test]
fn set_and_get_bits_grow_the_string_with_zeros() {
    let mut v = Vec::new();
    assert_eq!(set_bit(&mut v, 7, true), 0);
    assert_eq!(v, [0x01]);
    assert_eq!(set_bit(&mut v, 7, true), 1);
    assert_eq!(set_bit(&mut v, 17, true), 0);
    assert_eq!(v, [0x01, 0x00, 0x40]);
    assert_eq!(set_bit(&mut v, 7, false), 1);
    assert_eq!((get_bit(&v, 17), get_bit(&v, 16), get_bit(&v, 1000)), (1, 0, 0));
}

#[test]
fn bitcount_follows_redis_ranges() {
    let v = b"foobar";
    assert_eq!(bit_count(v, None), 26);
    assert_eq!(bit_count(v, r(0, Some(0), false)), 4);
    assert_eq!(bit_count(v, r(1, Some(1), false)), 6);
    assert_eq!(bit_count(v, r(1, Some(1), true)), 1);
    assert_eq!(bit_count(v, r(5, Some(30), true)), 17);
    assert_eq!(bit_count(v, r(-2, Some(-1), false)), 7);
    assert_eq!(bit_count(v, r(-1, Some(-2), false)), 0);
    assert_eq!(bit_count(v, r(2, Some(100), false)), 16);
    assert_eq!(bit_count(b"", r(0, Some(-1), false)), 0);
}

#[test]
fn bitpos_follows_redis_ranges() {
    assert_eq!(bit_pos(Some(b"\xff\xf0\x00"), false, None), 12);
    assert_eq!(bit_pos(Some(b"\x00\xff\xf0"), true, r(0, None, false)), 8);
    assert_eq!(bit_pos(Some(b"\x00\xff\xf0"), true, r(2, None, false)), 16);
    assert_eq!(bit_pos(Some(b"\x00\xff\xf0"), true, r(2, Some(-1), false)), 16);
    assert_eq!(bit_pos(Some(b"\x00\xff\xf0"), true, r(7, Some(15), true)), 8);
    assert_eq!(bit_pos(Some(b"\x00\x00\x00"), true, None), -1);
    // All ones: a clear bit is found after the string, unless an end is given.
    assert_eq!(bit_pos(Some(b"\xff\xff\xff"), false, None), 24);
    assert_eq!(bit_pos(Some(b"\xff\xff\xff"), false, r(0, None, false)), 24);
    assert_eq!(bit_pos(Some(b"\xff\xff\xff"), false, r(0, Some(-1), false)), -1);
    assert_eq!(bit_pos(None, false, None), 0);
    assert_eq!(bit_pos(None, true, None), -1);
    assert_eq!(bit_pos(Some(b""), false, None), -1);
    assert_eq!(bit_pos(Some(b"\xff"), true, r(5, Some(2), false)), -1);
}

#[test]
fn bitop_pads_shorter_sources_with_zeros() {
    let s = |x: &[u8]| x.to_vec();
    assert_eq!(bit_op(BitOpKind::And, &[s(b"\xff\x0f"), s(b"\xf0")]), [0xf0, 0x00]);
    assert_eq!(bit_op(BitOpKind::Or, &[s(b"\x01"), s(b"\x02\x04")]), [0x03, 0x04]);
    assert_eq!(bit_op(BitOpKind::Xor, &[s(b"\xff"), s(b"\x0f")]), [0xf0]);
    assert_eq!(bit_op(BitOpKind::Not, &[s(b"\x0f\xff")]), [0xf0, 0x00]);
    assert!(bit_op(BitOpKind::And, &[s(b""), s(b"")]).is_empty());
}

#[test]
fn lcs_answers_redis_forms() {
    let (a, b) = (b"ohmytext".as_slice(), b"mynewtext".as_slice());
    assert_eq!(lcs(a, b, LcsMode::default()), Reply::Bulk(b"mytext".to_vec()));
    assert_eq!(lcs(a, b, LcsMode { len: true, ..Default::default() }), Reply::Int(6));
    let range = |s: i64, e: i64| Reply::Array(vec![Reply::Int(s), Reply::Int(e)]);
    let m = |a: (i64, i64), b: (i64, i64), len: Option<i64>| {
        let mut v = vec![range(a.0, a.1), range(b.0, b.1)];
        v.extend(len.map(Reply::Int));
        Reply::Array(v)
    };
    assert_eq!(
        lcs(a, b, LcsMode { idx: true, ..Default::default() }),
        Reply::Map(vec![
            (Reply::bulk("matches"), Reply::Array(vec![m((4, 7), (5, 8), None), m((2, 3), (0, 1), None)])),
            (Reply::bulk("len"), Reply::Int(6)),
        ])
    );
    assert_eq!(
        lcs(a, b, LcsMode { idx: true, min_match_len: 4, with_match_len: true, ..Default::default() }),
        Reply::Map(vec![
            (Reply::bulk("matches"), Reply::Array(vec![m((4, 7), (5, 8), Some(4))])),
            (Reply::bulk("len"), Reply::Int(6)),
        ])
    );
    assert_eq!(lcs(b"", b"abc", LcsMode::default()), Reply::Bulk(Vec::new()));
}
