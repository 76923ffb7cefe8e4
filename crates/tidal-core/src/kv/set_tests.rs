//! Set commands against the in-memory store, with Redis 7.0's replies.

use crate::kv::test_db::*;
use crate::kv::Reply;

fn members(r: Reply) -> Vec<String> {
    let v = match r {
        Reply::Array(v) | Reply::Set(v) => v,
        other => panic!("not a collection: {other:?}"),
    };
    let mut out: Vec<String> =
        v.into_iter().map(|r| if let Reply::Bulk(b) = r { String::from_utf8(b).unwrap() } else { panic!() }).collect();
    out.sort();
    out
}

#[test]
fn members_are_added_tested_and_removed() {
    let mut db = Db::new();
    assert_eq!(db.run(&["SADD", "s", "a", "b", "a"]), int(2));
    assert_eq!(db.run(&["SADD", "s", "b", "c"]), int(1));
    assert_eq!(db.run(&["SCARD", "s"]), int(3));
    assert_eq!(db.run(&["SISMEMBER", "s", "b"]), int(1));
    assert_eq!(db.run(&["SMISMEMBER", "s", "a", "z"]), Reply::Array(vec![int(1), int(0)]));
    assert_eq!(members(db.run(&["SMEMBERS", "s"])), ["a", "b", "c"]);
    assert_eq!(db.run(&["TYPE", "s"]), Reply::simple("set"));
    assert_eq!(db.run(&["OBJECT", "ENCODING", "s"]), bulk("hashtable"));
    assert_eq!(db.run(&["SREM", "s", "a", "z"]), int(1));
    assert_eq!(db.run(&["SREM", "s", "b", "c"]), int(2));
    assert_eq!(db.run(&["EXISTS", "s"]), int(0));
    assert_eq!(db.store.element_rows(), 0);
    db.run(&["SADD", "n", "1", "2", "-3"]);
    assert_eq!(db.run(&["OBJECT", "ENCODING", "n"]), bulk("intset"));
}

#[test]
fn a_set_that_left_intset_stays_hashtable() {
    let mut db = Db::new();
    // As Redis's "SINTER with same integer elements but different encoding".
    db.run(&["SADD", "{t}1", "1", "2", "3"]);
    db.run(&["SADD", "{t}2", "1", "2", "3", "a"]);
    assert_eq!(db.run(&["SREM", "{t}2", "a"]), int(1));
    assert_eq!(db.run(&["OBJECT", "ENCODING", "{t}1"]), bulk("intset"));
    assert_eq!(db.run(&["OBJECT", "ENCODING", "{t}2"]), bulk("hashtable"));
    assert_eq!(members(db.run(&["SINTER", "{t}1", "{t}2"])), ["1", "2", "3"]);
    // Past set-max-intset-entries (512) and back.
    let many: Vec<String> = (0..513).map(|i| i.to_string()).collect();
    let mut sadd = vec!["SADD", "big"];
    sadd.extend(many.iter().map(String::as_str));
    assert_eq!(db.run(&sadd), int(513));
    assert_eq!(db.run(&["SREM", "big", "7"]), int(1));
    assert_eq!(db.run(&["OBJECT", "ENCODING", "big"]), bulk("hashtable"));
    // Emptied, it is a new set.
    db.run(&["SPOP", "{t}2", "3"]);
    assert_eq!(db.run(&["SADD", "{t}2", "9"]), int(1));
    assert_eq!(db.run(&["OBJECT", "ENCODING", "{t}2"]), bulk("intset"));
    // A copy keeps its past.
    assert_eq!(db.run(&["COPY", "big", "big2"]), int(1));
    assert_eq!(db.run(&["OBJECT", "ENCODING", "big2"]), bulk("hashtable"));
}

#[test]
fn algebra_and_store_forms() {
    let mut db = Db::new();
    db.run(&["SADD", "{s}a", "1", "2", "3", "4"]);
    db.run(&["SADD", "{s}b", "3", "4", "5"]);
    assert_eq!(members(db.run(&["SINTER", "{s}a", "{s}b"])), ["3", "4"]);
    assert_eq!(members(db.run(&["SUNION", "{s}a", "{s}b", "{s}none"])), ["1", "2", "3", "4", "5"]);
    assert_eq!(members(db.run(&["SDIFF", "{s}a", "{s}b"])), ["1", "2"]);
    assert_eq!(members(db.run(&["SINTER", "{s}a", "{s}none"])), Vec::<String>::new());
    assert_eq!(db.run(&["SINTERCARD", "2", "{s}a", "{s}b"]), int(2));
    assert_eq!(db.run(&["SINTERCARD", "2", "{s}a", "{s}b", "LIMIT", "1"]), int(1));
    assert_eq!(db.run(&["SINTERCARD", "0", "{s}a"]), err("ERR numkeys should be greater than 0"));
    assert_eq!(db.run(&["SINTERCARD", "3", "{s}a"]), err("ERR Number of keys can't be greater than number of args"));
    db.ok(&["SET", "{s}str", "x"]);
    let wrong = err("WRONGTYPE Operation against a key holding the wrong kind of value");
    assert_eq!(db.run(&["SUNION", "{s}a", "{s}str"]), wrong.clone());
    // Every key's type is checked, even after an empty one.
    assert_eq!(db.run(&["SINTER", "{s}none", "{s}str"]), wrong.clone());
    assert_eq!(db.run(&["SINTERSTORE", "{s}str", "{s}a", "{s}b"]), int(2));
    assert_eq!(db.run(&["TYPE", "{s}str"]), Reply::simple("set"));
    assert_eq!(db.run(&["SDIFFSTORE", "{s}d", "{s}b", "{s}a", "{s}b"]), int(0));
    assert_eq!(db.run(&["EXISTS", "{s}d"]), int(0));
    assert_eq!(db.run(&["SUNIONSTORE", "{s}a", "{s}a", "{s}b"]), int(5));
}

#[test]
fn smove_and_spop() {
    let mut db = Db::new();
    db.run(&["SADD", "{s}a", "x", "y"]);
    assert_eq!(db.run(&["SMOVE", "{s}a", "{s}b", "x"]), int(1));
    assert_eq!(db.run(&["SMOVE", "{s}a", "{s}b", "x"]), int(0));
    assert_eq!(db.run(&["SMOVE", "{s}a", "{s}a", "y"]), int(1));
    db.ok(&["SET", "{s}str", "v"]);
    let wrong = err("WRONGTYPE Operation against a key holding the wrong kind of value");
    assert_eq!(db.run(&["SMOVE", "{s}a", "{s}str", "y"]), wrong);
    assert_eq!(db.run(&["SMOVE", "{s}a", "{s}b", "y"]), int(1));
    assert_eq!(db.run(&["EXISTS", "{s}a"]), int(0));
    assert_eq!(members(db.run(&["SMEMBERS", "{s}b"])), ["x", "y"]);
    let popped = db.run(&["SPOP", "{s}b"]);
    assert!(matches!(popped, Reply::Bulk(_)));
    assert_eq!(db.run(&["SCARD", "{s}b"]), int(1));
    assert_eq!(members(db.run(&["SPOP", "{s}b", "5"])).len(), 1);
    assert_eq!(db.run(&["EXISTS", "{s}b"]), int(0));
    assert_eq!(db.run(&["SPOP", "{s}b"]), Reply::Nil);
    assert_eq!(db.run(&["SPOP", "{s}b", "-1"]), err("ERR value is out of range, must be positive"));
    assert_eq!(db.store.element_rows(), 0);
}

#[test]
fn big_sets_sample_and_scan() {
    let mut db = Db::new();
    let all: Vec<String> = (0..3000).map(|i| format!("m{i}")).collect();
    let mut args = vec!["SADD".to_string(), "s".to_string()];
    args.extend(all.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(db.run(&args), int(3000));
    assert_eq!(
        members(db.run(&["SRANDMEMBER", "s", "50"])).into_iter().collect::<std::collections::BTreeSet<_>>().len(),
        50
    );
    assert_eq!(members(db.run(&["SRANDMEMBER", "s", "-50"])).len(), 50);
    let mut cursor = "0".to_string();
    let mut seen = std::collections::BTreeSet::new();
    loop {
        let Reply::Array(parts) = db.run(&["SSCAN", "s", &cursor, "COUNT", "100"]) else { panic!() };
        let (Reply::Bulk(next), Reply::Array(items)) = (&parts[0], &parts[1]) else { panic!() };
        seen.extend(items.iter().map(|r| format!("{r:?}")));
        cursor = String::from_utf8(next.clone()).unwrap();
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen.len(), 3000);
    assert_eq!(members(db.run(&["SPOP", "s", "2990"])).len(), 2990);
    assert_eq!(db.run(&["SCARD", "s"]), int(10));
    assert_eq!(db.store.element_rows(), 10);
}
