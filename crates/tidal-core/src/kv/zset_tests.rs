//! Sorted-set commands against the in-memory store, with Redis 7.0's
//! replies (taken from redis-server 7.0.15).

use super::{format_score, parse_score};
use crate::kv::test_db::*;
use crate::kv::Reply;

fn strs(r: Reply) -> Vec<String> {
    let Reply::Array(v) = r else { panic!("not an array: {r:?}") };
    v.into_iter()
        .map(|r| if let Reply::Bulk(b) = r { String::from_utf8(b).unwrap() } else { panic!("{r:?}") })
        .collect()
}

#[test]
fn scores_print_as_redis_prints_them() {
    let cases = [
        (1.1, "1.1000000000000001"),
        (2.0, "2"),
        (1e300, "1.0000000000000001e+300"),
        (0.1, "0.10000000000000001"),
        (3.0000000000000004, "3.0000000000000004"),
        (1.5e-7, "1.4999999999999999e-07"),
        (123456789012345678.0, "1.2345678901234568e+17"),
        (0.30000000000000004, "0.30000000000000004"),
        (-2.5, "-2.5"),
        (f64::NEG_INFINITY, "-inf"),
        (0.0001, "0.0001"),
        (1e16, "10000000000000000"),
        (-7.0, "-7"),
        (99_999_999_999_999_984.0, "99999999999999984"),
        (1e17, "1e+17"),
        (-123_456_789.0, "-123456789"),
    ];
    for (v, want) in cases {
        assert_eq!(format_score(v), want, "{v}");
    }
    for bad in ["nan", "abc", "", " 1", "1e400", "1e-400", "1x"] {
        assert_eq!(parse_score(bad.as_bytes()), None, "{bad}");
    }
    assert_eq!(parse_score(b"-inf"), Some(f64::NEG_INFINITY));
    assert_eq!(parse_score(b"+inf"), Some(f64::INFINITY));
    assert_eq!(parse_score(b"0.0"), Some(0.0));
}

#[test]
fn members_sort_by_score_then_member() {
    let mut db = Db::new();
    assert_eq!(db.run2(&["ZADD", "z", "1.1", "a", "2", "b", "1e300", "c", "-inf", "d", "0.1", "e"]), int(5));
    assert_eq!(
        strs(db.run2(&["ZRANGE", "z", "0", "-1", "WITHSCORES"])),
        ["d", "-inf", "e", "0.10000000000000001", "a", "1.1000000000000001", "b", "2", "c", "1.0000000000000001e+300"]
    );
    assert_eq!(db.run2(&["ZADD", "z", "2", "a", "2", "aa"]), int(1));
    assert_eq!(strs(db.run2(&["ZRANGEBYSCORE", "z", "(1", "2"])), ["a", "aa", "b"]);
    assert_eq!(strs(db.run2(&["ZREVRANGE", "z", "0", "1"])), ["c", "b"]);
    assert_eq!(strs(db.run2(&["ZRANGE", "z", "(2", "-inf", "BYSCORE", "REV", "LIMIT", "1", "2"])), ["d"]);
    assert_eq!(db.run2(&["ZRANK", "z", "b"]), int(4));
    assert_eq!(db.run2(&["ZREVRANK", "z", "b"]), int(1));
    assert_eq!(db.run2(&["ZCOUNT", "z", "-inf", "(2"]), int(2));
    assert_eq!(db.run2(&["ZCARD", "z"]), int(6));
    assert_eq!(db.run2(&["ZSCORE", "z", "nope"]), Reply::Nil);
    assert_eq!(db.run2(&["ZINCRBY", "z", "0.2", "e"]), bulk("0.30000000000000004"));
    assert_eq!(db.run2(&["ZINCRBY", "z", "inf", "d"]), err("ERR resulting score is not a number (NaN)"));
    assert_eq!(db.run2(&["ZADD", "z", "nan", "x"]), err("ERR value is not a valid float"));
    assert_eq!(
        db.run2(&["ZADD", "z", "INCR", "1", "b", "2", "c"]),
        err("ERR INCR option supports a single increment-element pair")
    );
    assert_eq!(
        db.run2(&["ZADD", "z", "NX", "XX", "1", "a"]),
        err("ERR XX and NX options at the same time are not compatible")
    );
    assert_eq!(
        db.run2(&["ZADD", "z", "GT", "LT", "1", "a"]),
        err("ERR GT, LT, and/or NX options at the same time are not compatible")
    );
    assert_eq!(db.run2(&["ZRANGEBYSCORE", "z", "x", "2"]), err("ERR min or max is not a float"));
    assert_eq!(db.run2(&["ZRANGEBYLEX", "z", "a", "b"]), err("ERR min or max not valid string range item"));
    assert_eq!(db.run2(&["TYPE", "z"]), Reply::simple("zset"));
}

#[test]
fn pops_removals_and_stores() {
    let mut db = Db::new();
    db.run2(&["ZADD", "{z}a", "1", "x", "2", "y", "3", "z"]);
    assert_eq!(strs(db.run2(&["ZPOPMIN", "{z}a"])), ["x", "1"]);
    assert_eq!(strs(db.run2(&["ZPOPMAX", "{z}a", "5"])), ["z", "3", "y", "2"]);
    assert_eq!(db.run2(&["EXISTS", "{z}a"]), int(0));
    assert_eq!(db.store.element_rows(), 0);
    db.run2(&["ZADD", "{z}a", "1", "a", "2", "b", "3", "c", "4", "d"]);
    assert_eq!(db.run2(&["ZREMRANGEBYRANK", "{z}a", "0", "0"]), int(1));
    assert_eq!(db.run2(&["ZREMRANGEBYSCORE", "{z}a", "(3", "+inf"]), int(1));
    assert_eq!(db.run2(&["ZREM", "{z}a", "b", "nope"]), int(1));
    assert_eq!(strs(db.run2(&["ZRANGE", "{z}a", "0", "-1"])), ["c"]);
    db.run2(&["ZADD", "{z}b", "5", "c", "1", "m"]);
    db.run2(&["SADD", "{z}s", "c", "q"]);
    assert_eq!(db.run2(&["ZUNIONSTORE", "{z}o", "3", "{z}a", "{z}b", "{z}s", "WEIGHTS", "1", "2", "3"]), int(3));
    assert_eq!(strs(db.run2(&["ZRANGE", "{z}o", "0", "-1", "WITHSCORES"])), ["m", "2", "q", "3", "c", "16"]);
    assert_eq!(db.run2(&["ZINTERSTORE", "{z}o", "2", "{z}a", "{z}b", "AGGREGATE", "MAX"]), int(1));
    assert_eq!(db.run2(&["ZSCORE", "{z}o", "c"]), bulk("5"));
    assert_eq!(db.run2(&["ZDIFFSTORE", "{z}o", "2", "{z}b", "{z}a"]), int(1));
    assert_eq!(strs(db.run2(&["ZRANGE", "{z}o", "0", "-1"])), ["m"]);
}

#[test]
fn zmpop_and_the_blocking_pops_take_from_the_first_set_that_has_members() {
    let mut db = Db::new();
    db.run2(&["ZADD", "{z}b", "1", "x", "2", "y", "3", "z"]);
    let pair = |m: &str, s: &str| Reply::Array(vec![bulk(m), bulk(s)]);
    assert_eq!(
        db.run2(&["ZMPOP", "2", "{z}a", "{z}b", "MIN"]),
        Reply::Array(vec![bulk("{z}b"), Reply::Array(vec![pair("x", "1")])])
    );
    assert_eq!(strs(db.run2(&["BZPOPMAX", "{z}a", "{z}b", "0"])), ["{z}b", "z", "3"]);
    assert_eq!(strs(db.run2(&["BZPOPMIN", "{z}b", "0"])), ["{z}b", "y", "2"]);
    assert_eq!(db.run2(&["EXISTS", "{z}b"]), int(0));
    assert_eq!(db.run2(&["ZMPOP", "1", "{z}b", "MAX", "COUNT", "2"]), Reply::NilArray);
    assert_eq!(db.run2(&["BZMPOP", "0.01", "1", "{z}b", "MAX"]), Reply::NilArray);
    db.run2(&["SET", "{z}s", "v"]);
    assert_eq!(
        db.run2(&["BZPOPMIN", "{z}s", "0"]),
        err("WRONGTYPE Operation against a key holding the wrong kind of value")
    );
    assert_eq!(db.run2(&["ZMPOP", "1", "{z}b", "LEFT"]), err("ERR syntax error"));
}

#[test]
fn a_sorted_set_that_outgrew_listpack_stays_skiplist_as_in_redis() {
    let mut db = Db::new();
    let long = "m".repeat(65);
    db.run(&["ZADD", "z", "1", "a", "2", &long]);
    assert_eq!(db.run(&["OBJECT", "ENCODING", "z"]), bulk("skiplist"));
    assert_eq!(db.run(&["ZREM", "z", &long]), int(1));
    assert_eq!(db.run(&["OBJECT", "ENCODING", "z"]), bulk("skiplist"), "a member once too long");
    db.run(&["ZINCRBY", "y", "1", "a"]);
    assert_eq!(db.run(&["OBJECT", "ENCODING", "y"]), bulk("listpack"));
}

/// `members` members named `m{i}`, with scores that repeat (so that ties
/// order by member), both infinities and -0 among them.
fn zadd_args(key: &str, from: usize, to: usize) -> Vec<String> {
    let mut args = vec!["ZADD".to_string(), key.to_string()];
    for i in from..to {
        let score = match i % 11 {
            0 => "-inf".to_string(),
            1 => "+inf".to_string(),
            2 => "-0".to_string(),
            n => format!("{}", (n as f64 - 6.0) / 4.0),
        };
        args.extend([score, format!("m{i}")]);
    }
    args
}

fn run_owned(db: &mut Db, args: &[String]) -> Reply {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    db.run2(&args)
}

#[test]
fn a_set_writes_its_score_index_when_it_passes_128_members_and_keeps_it() {
    let mut db = Db::new();
    assert_eq!(run_owned(&mut db, &zadd_args("z", 0, 128)), int(128));
    assert_eq!(db.store.element_rows(), 0, "a small set is packed into its record");
    assert_eq!(run_owned(&mut db, &zadd_args("z", 128, 129)), int(1));
    assert_eq!(db.store.element_rows(), 2 * 129, "past 128 members, two rows per member");
    let rem: Vec<String> =
        ["ZREM", "z"].into_iter().map(String::from).chain((0..100).map(|i| format!("m{i}"))).collect();
    assert_eq!(run_owned(&mut db, &rem), int(100));
    assert_eq!(db.store.element_rows(), 2 * 29, "the index stays when the set shrinks");
    assert_eq!(db.run2(&["DEL", "z"]), int(1));
    assert_eq!(db.store.element_rows(), 0);
    // ZUNIONSTORE writes its destination whole: indexed when it is large.
    run_owned(&mut db, &zadd_args("a", 0, 100));
    run_owned(&mut db, &zadd_args("b", 50, 150));
    assert_eq!(db.run2(&["ZUNIONSTORE", "u", "2", "a", "b"]), int(150));
    assert_eq!(db.store.element_rows(), 2 * 150, "a and b are packed");
}

/// Two stores whose `z` holds the same 60 members: with its score index
/// (it grew past 128 members and shrank again), and without.
fn indexed_and_small() -> (Db, Db) {
    let (mut indexed, mut small) = (Db::new(), Db::new());
    run_owned(&mut indexed, &zadd_args("z", 0, 200));
    let rem: Vec<String> =
        ["ZREM", "z"].into_iter().map(String::from).chain((60..200).map(|i| format!("m{i}"))).collect();
    run_owned(&mut indexed, &rem);
    run_owned(&mut small, &zadd_args("z", 0, 60));
    (indexed, small)
}

#[test]
fn memory_usage_counts_the_score_index() {
    let (mut indexed, mut small) = indexed_and_small();
    let usage = |db: &mut Db, samples: &str| match db.run2(&["MEMORY", "USAGE", "z", "SAMPLES", samples]) {
        Reply::Int(n) => n,
        r => panic!("{r:?}"),
    };
    let (with_index, without) = (usage(&mut indexed, "0"), usage(&mut small, "0"));
    // 60 rows by score beside the 60 by member, each at least its
    // overhead (48 bytes) and its key.
    assert!(with_index >= without + 60 * 49, "{with_index} against {without}");
    let sampled = usage(&mut indexed, "5");
    assert!(sampled >= without + 60 * 49, "5 samples are scaled to every row: {sampled} against {without}");
}

/// A set that grew past the limit and shrank again keeps its index; every
/// reply and every change is the same as for the same members in a set
/// that never grew, which has none.
#[test]
fn a_set_with_its_score_index_answers_as_one_without() {
    let (mut indexed, mut small) = indexed_and_small();
    assert_eq!(indexed.store.element_rows(), 120);
    assert_eq!(small.store.element_rows(), 0, "packed, without an index");
    let commands: &[&[&str]] = &[
        &["ZRANGE", "z", "0", "-1", "WITHSCORES"],
        &["ZRANGE", "z", "5", "17"],
        &["ZRANGE", "z", "-10", "-3", "REV", "WITHSCORES"],
        &["ZRANGE", "z", "(-0.5", "0.75", "BYSCORE", "WITHSCORES"],
        &["ZRANGE", "z", "0", "-inf", "BYSCORE", "REV", "LIMIT", "2", "5"],
        &["ZRANGE", "z", "[m3", "(m5", "BYLEX"],
        &["ZRANGEBYSCORE", "z", "-inf", "(-1", "WITHSCORES"],
        &["ZREVRANGEBYSCORE", "z", "+inf", "0", "LIMIT", "1", "4"],
        &["ZCOUNT", "z", "0", "0"],
        &["ZCOUNT", "z", "(-inf", "(+inf"],
        &["ZRANK", "z", "m13"],
        &["ZREVRANK", "z", "m2"],
        &["ZRANK", "z", "nope"],
        &["ZSCORE", "z", "m2"],
        &["ZCARD", "z"],
        &["ZRANDMEMBER", "z", "-5", "WITHSCORES"],
        &["ZINCRBY", "z", "0.25", "m7"],
        &["ZADD", "z", "GT", "CH", "0", "m1", "9", "m8", "1", "new"],
        &["ZRANGE", "z", "0", "-1", "WITHSCORES"],
        &["ZPOPMIN", "z", "3"],
        &["ZPOPMAX", "z", "2"],
        &["ZREMRANGEBYSCORE", "z", "-0.5", "0"],
        &["ZREMRANGEBYRANK", "z", "0", "1"],
        &["ZRANGESTORE", "dst", "z", "0", "-1"],
        &["ZRANGE", "dst", "0", "-1", "WITHSCORES"],
        &["ZRANGE", "z", "0", "-1", "WITHSCORES"],
        &["DUMP", "z"],
    ];
    for args in commands {
        assert_eq!(indexed.run2(args), small.run2(args), "{args:?}");
    }
}
