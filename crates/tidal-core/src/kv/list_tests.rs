//! List commands against the in-memory store, with Redis 7.0's replies.

use crate::kv::test_db::*;
use crate::kv::Reply;

fn strs(r: Reply) -> Vec<String> {
    let Reply::Array(v) = r else { panic!("not an array: {r:?}") };
    v.into_iter()
        .map(|r| if let Reply::Bulk(b) = r { String::from_utf8(b).unwrap() } else { panic!("{r:?}") })
        .collect()
}

fn range(db: &mut Db, key: &str) -> Vec<String> {
    strs(db.run(&["LRANGE", key, "0", "-1"]))
}

#[test]
fn pushes_pops_and_indexes() {
    let mut db = Db::new();
    assert_eq!(db.run(&["RPUSH", "l", "b", "c"]), int(2));
    assert_eq!(db.run(&["LPUSH", "l", "a", "z"]), int(4));
    assert_eq!(range(&mut db, "l"), ["z", "a", "b", "c"]);
    assert_eq!(db.run(&["LINDEX", "l", "-1"]), bulk("c"));
    assert_eq!(db.run(&["LINDEX", "l", "4"]), Reply::Nil);
    assert_eq!(db.run(&["LLEN", "l"]), int(4));
    assert_eq!(db.run(&["LPOP", "l"]), bulk("z"));
    assert_eq!(db.run(&["RPOP", "l", "2"]), Reply::Array(vec![bulk("c"), bulk("b")]));
    assert_eq!(db.run(&["LPOP", "l", "0"]), Reply::Array(Vec::new()));
    assert_eq!(db.run(&["LPOP", "l", "5"]), Reply::Array(vec![bulk("a")]));
    assert_eq!(db.run(&["EXISTS", "l"]), int(0));
    assert_eq!(db.run(&["LPOP", "l"]), Reply::Nil);
    assert_eq!(db.run(&["LPOP", "l", "1"]), Reply::NilArray);
    assert_eq!(db.run(&["LPOP", "l", "-1"]), err("ERR value is out of range, must be positive"));
    assert_eq!(db.run(&["LPUSHX", "l", "x"]), int(0));
    assert_eq!(db.run(&["RPUSH", "l", "x"]), int(1));
    assert_eq!(db.run(&["RPUSHX", "l", "y"]), int(2));
    assert_eq!(db.run(&["TYPE", "l"]), Reply::simple("list"));
    assert_eq!(db.run(&["OBJECT", "ENCODING", "l"]), bulk("quicklist"));
    db.ok(&["SET", "s", "v"]);
    assert_eq!(db.run(&["LPUSH", "s", "v"]), err("WRONGTYPE Operation against a key holding the wrong kind of value"));
    assert_eq!(db.run(&["GET", "l"]), err("WRONGTYPE Operation against a key holding the wrong kind of value"));
}

#[test]
fn ranges_clamp_like_redis() {
    let mut db = Db::new();
    db.run(&["RPUSH", "l", "0", "1", "2", "3", "4"]);
    let r = |db: &mut Db, a: &str, b: &str| strs(db.run(&["LRANGE", "l", a, b]));
    assert_eq!(r(&mut db, "1", "2"), ["1", "2"]);
    assert_eq!(r(&mut db, "-2", "100"), ["3", "4"]);
    assert_eq!(r(&mut db, "-100", "0"), ["0"]);
    assert_eq!(r(&mut db, "3", "1"), Vec::<String>::new());
    assert_eq!(r(&mut db, "5", "10"), Vec::<String>::new());
    assert_eq!(r(&mut db, "0", "-6"), Vec::<String>::new());
    assert_eq!(db.run(&["LRANGE", "l", "x", "1"]), err("ERR value is not an integer or out of range"));
}

#[test]
fn set_trim_rem_insert_renumber() {
    let mut db = Db::new();
    db.run(&["RPUSH", "l", "a", "b", "a", "c", "a"]);
    db.ok(&["LSET", "l", "-1", "A"]);
    assert_eq!(db.run(&["LSET", "l", "5", "x"]), err("ERR index out of range"));
    assert_eq!(db.run(&["LSET", "nope", "0", "x"]), err("ERR no such key"));
    assert_eq!(db.run(&["LREM", "l", "-1", "a"]), int(1));
    assert_eq!(range(&mut db, "l"), ["a", "b", "c", "A"]);
    assert_eq!(db.run(&["LINSERT", "l", "BEFORE", "c", "x"]), int(5));
    assert_eq!(db.run(&["LINSERT", "l", "AFTER", "A", "y"]), int(6));
    assert_eq!(db.run(&["LINSERT", "l", "AFTER", "nope", "y"]), int(-1));
    assert_eq!(db.run(&["LINSERT", "l", "MIDDLE", "a", "y"]), err("ERR syntax error"));
    assert_eq!(range(&mut db, "l"), ["a", "b", "x", "c", "A", "y"]);
    assert_eq!(db.run(&["LINDEX", "l", "3"]), bulk("c"));
    assert_eq!(db.run(&["LREM", "l", "0", "b"]), int(1));
    db.ok(&["LTRIM", "l", "1", "-2"]);
    assert_eq!(range(&mut db, "l"), ["x", "c", "A"]);
    db.run(&["LPUSH", "l", "front"]);
    assert_eq!(range(&mut db, "l"), ["front", "x", "c", "A"]);
    db.ok(&["LTRIM", "l", "5", "10"]);
    assert_eq!(db.run(&["EXISTS", "l"]), int(0));
    assert_eq!(db.store.element_rows(), 0);
}

#[test]
fn lpos_ranks_counts_and_maxlen() {
    let mut db = Db::new();
    db.run(&["RPUSH", "l", "a", "b", "c", "1", "2", "3", "c", "c"]);
    assert_eq!(db.run(&["LPOS", "l", "c"]), int(2));
    assert_eq!(db.run(&["LPOS", "l", "c", "RANK", "2"]), int(6));
    assert_eq!(db.run(&["LPOS", "l", "c", "RANK", "-1"]), int(7));
    assert_eq!(db.run(&["LPOS", "l", "c", "COUNT", "0"]), Reply::Array(vec![int(2), int(6), int(7)]));
    assert_eq!(db.run(&["LPOS", "l", "c", "RANK", "-2", "COUNT", "2"]), Reply::Array(vec![int(6), int(2)]));
    assert_eq!(db.run(&["LPOS", "l", "c", "COUNT", "0", "MAXLEN", "3"]), Reply::Array(vec![int(2)]));
    assert_eq!(db.run(&["LPOS", "l", "z"]), Reply::Nil);
    assert!(
        matches!(db.run(&["LPOS", "l", "c", "RANK", "0"]), Reply::Error(e) if e.starts_with("ERR RANK can't be zero"))
    );
    assert_eq!(db.run(&["LPOS", "l", "c", "COUNT", "-1"]), err("ERR COUNT can't be negative"));
}

#[test]
fn moves_between_lists_of_a_slot() {
    let mut db = Db::new();
    db.run(&["RPUSH", "{l}a", "1", "2", "3"]);
    assert_eq!(db.run(&["LMOVE", "{l}a", "{l}b", "LEFT", "RIGHT"]), bulk("1"));
    assert_eq!(db.run(&["RPOPLPUSH", "{l}a", "{l}b"]), bulk("3"));
    assert_eq!(range(&mut db, "{l}b"), ["3", "1"]);
    assert_eq!(db.run(&["LMOVE", "{l}b", "{l}b", "LEFT", "RIGHT"]), bulk("3"));
    assert_eq!(range(&mut db, "{l}b"), ["1", "3"]);
    assert_eq!(db.run(&["LMOVE", "{l}none", "{l}b", "LEFT", "RIGHT"]), Reply::Nil);
    // A one-element list rotated onto itself keeps its TTL, as in Redis.
    db.run(&["RPUSH", "{l}one", "x"]);
    db.run(&["EXPIRE", "{l}one", "100"]);
    assert_eq!(db.run(&["LMOVE", "{l}one", "{l}one", "LEFT", "RIGHT"]), bulk("x"));
    assert_eq!(db.run(&["TTL", "{l}one"]), Reply::Int(100));
    assert_eq!(range(&mut db, "{l}one"), ["x"]);
    db.ok(&["SET", "{l}s", "v"]);
    assert_eq!(
        db.run(&["LMOVE", "{l}a", "{l}s", "LEFT", "LEFT"]),
        err("WRONGTYPE Operation against a key holding the wrong kind of value")
    );
    assert_eq!(
        db.run(&["LMPOP", "3", "{l}none", "{l}a", "{l}b", "RIGHT", "COUNT", "5"]),
        Reply::Array(vec![bulk("{l}a"), Reply::Array(vec![bulk("2")])])
    );
    assert_eq!(db.run(&["LMPOP", "1", "{l}none", "LEFT"]), Reply::NilArray);
    assert_eq!(db.run(&["LMPOP", "0", "{l}a", "LEFT"]), err("ERR numkeys should be greater than 0"));
    assert_eq!(db.run(&["LMPOP", "1", "{l}b", "LEFT", "COUNT", "0"]), err("ERR count should be greater than 0"));
    // Many pushes at both ends, then pops, keep order.
    for i in 0..100 {
        db.run(&["LPUSH", "{l}m", &format!("l{i}")]);
        db.run(&["RPUSH", "{l}m", &format!("r{i}")]);
    }
    assert_eq!(db.run(&["LINDEX", "{l}m", "0"]), bulk("l99"));
    assert_eq!(db.run(&["LINDEX", "{l}m", "199"]), bulk("r99"));
    assert_eq!(db.run(&["LINDEX", "{l}m", "100"]), bulk("r0"));
}

#[test]
fn blocking_forms_pop_at_once_when_there_is_something_and_time_out_otherwise() {
    let mut db = Db::new();
    db.run(&["RPUSH", "{l}b", "1", "2", "3"]);
    assert_eq!(strs(db.run(&["BLPOP", "{l}a", "{l}b", "0"])), ["{l}b", "1"]);
    assert_eq!(strs(db.run(&["BRPOP", "{l}b", "0"])), ["{l}b", "3"]);
    assert_eq!(db.run(&["BRPOPLPUSH", "{l}b", "{l}c", "0"]), bulk("2"));
    assert_eq!(db.run(&["BLMOVE", "{l}c", "{l}a", "LEFT", "RIGHT", "0"]), bulk("2"));
    assert_eq!(db.run(&["BLMOVE", "{l}c", "{l}a", "LEFT", "RIGHT", "0.1"]), Reply::Nil);
    assert_eq!(db.run(&["BLPOP", "{l}b", "{l}c", "0.1"]), Reply::NilArray);
    db.run(&["RPUSH", "{l}b", "x", "y"]);
    assert_eq!(
        db.run(&["BLMPOP", "1", "2", "{l}c", "{l}b", "RIGHT", "COUNT", "5"]),
        Reply::Array(vec![bulk("{l}b"), Reply::Array(vec![bulk("y"), bulk("x")])])
    );
    assert_eq!(range(&mut db, "{l}a"), ["2"]);
}
