//! Packed collections against the same members written out as element
//! rows: every reply the same, and the rows where they should be.

use crate::kv::test_db::*;
use crate::kv::Reply;

fn run(db: &mut Db, args: &[String]) -> Reply {
    db.run(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn args(parts: &[&str], tail: impl Iterator<Item = String>) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).chain(tail).collect()
}

/// Two stores with `key` holding the same small collection: packed in
/// one, written out as element rows in the other (a member too long to
/// pack was added and removed again). `fill` makes the collection, `long`
/// adds the long member and `unlong` removes it.
fn pair(fill: &[Vec<String>], long: &[&str], unlong: &[&str]) -> (Db, Db) {
    let (mut packed, mut rows) = (Db::new(), Db::new());
    for cmd in fill {
        run(&mut packed, cmd);
        run(&mut rows, cmd);
    }
    let long_member = "x".repeat(5000);
    let with = |parts: &[&str]| -> Vec<String> {
        parts.iter().map(|p| if *p == "LONG" { long_member.clone() } else { p.to_string() }).collect()
    };
    run(&mut rows, &with(long));
    run(&mut rows, &with(unlong));
    assert_eq!(packed.store.element_rows(), 0, "packed");
    assert!(rows.store.element_rows() > 0, "written out");
    (packed, rows)
}

fn same(mut packed: Db, mut rows: Db, commands: &[&[&str]]) {
    for cmd in commands {
        assert_eq!(packed.run(cmd), rows.run(cmd), "{cmd:?}");
    }
}

#[test]
fn a_packed_set_answers_as_one_with_element_rows() {
    let fill = [
        args(&["SADD", "{s}a"], (0..60).map(|i| format!("m{i}"))),
        args(&["SADD", "{s}b"], (40..70).map(|i| format!("m{i}"))),
        args(&["SADD", "{s}i"], (0..20).map(|i| i.to_string())),
    ];
    let (packed, rows) = pair(&fill, &["SADD", "{s}a", "LONG"], &["SREM", "{s}a", "LONG"]);
    same(
        packed,
        rows,
        &[
            &["SMEMBERS", "{s}a"],
            &["SCARD", "{s}a"],
            &["SISMEMBER", "{s}a", "m7"],
            &["SMISMEMBER", "{s}a", "m7", "nope"],
            &["SSCAN", "{s}a", "0", "COUNT", "7"],
            &["SRANDMEMBER", "{s}a", "-9"],
            &["SINTER", "{s}a", "{s}b"],
            &["SUNION", "{s}a", "{s}b"],
            &["SDIFF", "{s}a", "{s}b"],
            &["SINTERCARD", "2", "{s}a", "{s}b"],
            &["SINTERSTORE", "{s}c", "{s}a", "{s}b"],
            &["SMEMBERS", "{s}c"],
            &["SMOVE", "{s}a", "{s}b", "m1"],
            &["SPOP", "{s}a", "3"],
            &["SREM", "{s}a", "m2", "m3", "nope"],
            &["SORT", "{s}i"],
            &["SORT", "{s}a", "ALPHA", "LIMIT", "0", "5"],
            &["COPY", "{s}a", "{s}d"],
            &["RENAME", "{s}b", "{s}e"],
            &["SMEMBERS", "{s}d"],
            &["SMEMBERS", "{s}e"],
            &["DUMP", "{s}e"],
            &["SUNIONSTORE", "{s}a", "{s}a", "{s}e"],
            &["SMEMBERS", "{s}a"],
        ],
    );
}

#[test]
fn a_packed_list_answers_as_one_with_element_rows() {
    let fill = [args(&["RPUSH", "{l}a"], (0..50).map(|i| format!("e{}", i % 17)))];
    let (packed, rows) = pair(&fill, &["LPUSH", "{l}a", "LONG"], &["LPOP", "{l}a"]);
    same(
        packed,
        rows,
        &[
            &["LRANGE", "{l}a", "0", "-1"],
            &["LLEN", "{l}a"],
            &["LINDEX", "{l}a", "-3"],
            &["LPOS", "{l}a", "e3", "COUNT", "0"],
            &["LSET", "{l}a", "4", "four"],
            &["LINSERT", "{l}a", "BEFORE", "e5", "x"],
            &["LREM", "{l}a", "2", "e6"],
            &["LTRIM", "{l}a", "1", "-2"],
            &["LPUSH", "{l}a", "p1", "p2"],
            &["RPOP", "{l}a", "2"],
            &["LMOVE", "{l}a", "{l}b", "LEFT", "RIGHT"],
            &["RPOPLPUSH", "{l}a", "{l}a"],
            &["LMPOP", "2", "{l}c", "{l}a", "RIGHT", "COUNT", "3"],
            &["SORT", "{l}a", "ALPHA", "DESC", "STORE", "{l}s"],
            &["LRANGE", "{l}s", "0", "-1"],
            &["BLPOP", "{l}b", "0"],
            &["DUMP", "{l}a"],
            &["LRANGE", "{l}a", "0", "-1"],
        ],
    );
}

#[test]
fn a_packed_sorted_set_answers_as_one_with_element_rows() {
    let fill = [
        args(&["ZADD", "{z}a"], (0..50).flat_map(|i| [format!("{}", i % 7), format!("m{i}")])),
        args(&["ZADD", "{z}b"], (30..60).flat_map(|i| [format!("{}", i % 5), format!("m{i}")])),
    ];
    let (packed, rows) = pair(&fill, &["ZADD", "{z}a", "1", "LONG"], &["ZREM", "{z}a", "LONG"]);
    same(
        packed,
        rows,
        &[
            &["ZRANGE", "{z}a", "0", "-1", "WITHSCORES"],
            &["ZRANGE", "{z}a", "(1", "3", "BYSCORE", "LIMIT", "2", "4"],
            &["ZRANK", "{z}a", "m20"],
            &["ZSCORE", "{z}a", "m21"],
            &["ZSCAN", "{z}a", "0", "COUNT", "5"],
            &["ZUNIONSTORE", "{z}u", "2", "{z}a", "{z}b", "WEIGHTS", "1", "2"],
            &["ZRANGE", "{z}u", "0", "-1", "WITHSCORES"],
            &["ZINTER", "2", "{z}a", "{z}b", "WITHSCORES"],
            &["ZPOPMAX", "{z}a", "2"],
            &["ZREMRANGEBYRANK", "{z}a", "0", "3"],
            &["ZINCRBY", "{z}a", "10", "m9"],
            &["ZMPOP", "2", "{z}a", "{z}b", "MIN", "COUNT", "2"],
            &["DUMP", "{z}a"],
            &["ZRANGE", "{z}a", "0", "-1", "WITHSCORES"],
        ],
    );
}

#[test]
fn a_collection_outgrows_its_record_by_rows_or_by_bytes_and_stays_out() {
    let mut db = Db::new();
    run(&mut db, &args(&["SADD", "s"], (0..128).map(|i| i.to_string())));
    assert_eq!(db.store.element_rows(), 0, "128 members: packed");
    db.run(&["SADD", "s", "128"]);
    assert_eq!(db.store.element_rows(), 129, "the 129th writes every member out");
    db.run(&["SREM", "s", "0", "1"]);
    assert_eq!(db.store.element_rows(), 127, "and they stay out");
    db.run(&["RPUSH", "l", "a"]);
    db.run(&["RPUSH", "l", &"b".repeat(4100)]);
    assert_eq!(db.store.element_rows(), 127 + 2, "past 4 KiB");
    assert_eq!(db.run(&["LINDEX", "l", "1"]), bulk(&"b".repeat(4100)));
    // A collection emptied is deleted; the next under its key starts packed.
    db.run(&["DEL", "l"]);
    db.run(&["RPUSH", "l", "a"]);
    assert_eq!(db.store.element_rows(), 127);
    // A stream is never packed.
    db.run(&["XADD", "x", "1-1", "f", "v"]);
    assert!(db.store.element_rows() > 127);
    assert_eq!(db.run(&["XLEN", "x"]), int(1));
    // Expired and overwritten packed collections leave nothing behind.
    db.run(&["PEXPIRE", "l", "5"]);
    db.now += 6;
    db.ok(&["SET", "l", "v"]);
    assert_eq!(db.run(&["GET", "l"]), bulk("v"));
    db.run(&["HSET", "h", "f", "v"]);
    db.ok(&["SET", "h", "w"]);
    assert_eq!(db.run(&["GET", "h"]), bulk("w"));
    assert_eq!(db.run(&["DBSIZE"]), int(4));
}

/// A string that replaces a packed collection the same write has read
/// (SET with XX or KEEPTTL) takes the collection's rows with it: none
/// is left behind as an element row to come back in a later collection.
#[test]
fn a_string_over_a_packed_collection_it_read_leaves_no_rows() {
    for set in [&["SET", "k", "s", "XX"][..], &["SET", "k", "s", "KEEPTTL"]] {
        for make in [&["HSET", "k", "f1", "1", "f2", "2"][..], &["RPUSH", "k", "a", "b"], &["SADD", "k", "a", "b"]] {
            let mut db = Db::new();
            db.run(make);
            db.run(set);
            assert_eq!(db.store.element_rows(), 0, "{make:?} then {set:?}");
            assert_eq!(db.run(&["GET", "k"]), Reply::Bulk(b"s".to_vec()), "{make:?} then {set:?}");
            db.run(&["DEL", "k"]);
            run(&mut db, &args(&["HSET", "k"], (0..200).flat_map(|i| [format!("g{i}"), "v".into()])));
            assert_eq!(db.run(&["HLEN", "k"]), Reply::Int(200));
            assert_eq!(db.store.element_rows(), 200, "{make:?} then {set:?}: only the new hash's rows");
        }
    }
}
