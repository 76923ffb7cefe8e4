//! SORT and SORT_RO against the in-memory store, with Redis 7's replies.

use crate::kv::test_db::*;
use crate::kv::Reply;

fn list(items: &[&str]) -> Reply {
    Reply::Array(items.iter().map(|s| bulk(s)).collect())
}

#[test]
fn numbers_text_limits_and_directions() {
    let mut db = Db::new();
    db.run(&["RPUSH", "l", "3", "-1.5", "10", "2", "1e1"]);
    assert_eq!(db.run(&["SORT", "l"]), list(&["-1.5", "2", "3", "10", "1e1"]), "ties by text");
    assert_eq!(db.run(&["SORT", "l", "DESC"]), list(&["1e1", "10", "3", "2", "-1.5"]));
    assert_eq!(db.run(&["SORT", "l", "ALPHA"]), list(&["-1.5", "10", "1e1", "2", "3"]));
    assert_eq!(db.run(&["SORT", "l", "LIMIT", "1", "2"]), list(&["2", "3"]));
    assert_eq!(db.run(&["SORT", "l", "LIMIT", "-5", "2"]), list(&["-1.5", "2"]));
    assert_eq!(db.run(&["SORT", "l", "LIMIT", "3", "-1"]), list(&["10", "1e1"]));
    assert_eq!(db.run(&["SORT", "l", "LIMIT", "5", "1"]), list(&[]));
    assert_eq!(db.run(&["SORT", "l", "LIMIT", "2", "0"]), list(&[]));
    assert_eq!(db.run(&["SORT_RO", "l", "DESC", "LIMIT", "0", "1"]), list(&["1e1"]));
    // BY without a `*` keeps the list's order (reversed by DESC).
    assert_eq!(db.run(&["SORT", "l", "BY", "nosort", "LIMIT", "1", "2"]), list(&["-1.5", "10"]));
    assert_eq!(db.run(&["SORT", "l", "BY", "nosort", "DESC", "LIMIT", "0", "2"]), list(&["1e1", "2"]));

    db.run(&["RPUSH", "t", "b", "a"]);
    assert_eq!(db.run(&["SORT", "t"]), err("ERR One or more scores can't be converted into double"));
    assert_eq!(db.run(&["SORT", "missing"]), list(&[]));
    db.run(&["SET", "str", "x"]);
    assert_eq!(db.run(&["SORT", "str"]), err("WRONGTYPE Operation against a key holding the wrong kind of value"));
    assert_eq!(db.run(&["SORT", "l", "LIMIT", "x", "1"]), err("ERR value is not an integer or out of range"));
    assert_eq!(db.run(&["SORT", "l", "LIMIT", "1"]), err("ERR syntax error"));
    assert_eq!(db.run(&["SORT", "l", "BOGUS"]), err("ERR syntax error"));
    assert_eq!(db.run(&["SORT_RO", "l", "STORE", "d"]), err("ERR syntax error"));
}

#[test]
fn sets_and_sorted_sets() {
    let mut db = Db::new();
    db.run(&["SADD", "s", "5", "1", "3"]);
    assert_eq!(db.run(&["SORT", "s"]), list(&["1", "3", "5"]));
    assert_eq!(db.run(&["SORT", "s", "DESC", "LIMIT", "0", "2"]), list(&["5", "3"]));
    db.run(&["ZADD", "z", "1", "c", "2", "a", "3", "b"]);
    assert_eq!(db.run(&["SORT", "z", "ALPHA"]), list(&["a", "b", "c"]));
    // A sorted set unsorted is in score order.
    assert_eq!(db.run(&["SORT", "z", "BY", "nosort"]), list(&["c", "a", "b"]));
    assert_eq!(db.run(&["SORT", "z", "BY", "nosort", "DESC", "LIMIT", "1", "5"]), list(&["a", "c"]));
    // Stored unsorted, a set is sorted as text.
    db.run(&["SADD", "{s}w", "b", "c", "a"]);
    assert_eq!(db.run(&["SORT", "{s}w", "BY", "nosort", "STORE", "{s}out"]), int(3));
    assert_eq!(db.run(&["LRANGE", "{s}out", "0", "-1"]), list(&["a", "b", "c"]));
}

#[test]
fn by_and_get_read_keys_of_the_slot() {
    let mut db = Db::new();
    db.run(&["RPUSH", "{u}ids", "1", "2", "3", "4"]);
    db.run(&["MSET", "{u}w_1", "30", "{u}w_2", "10", "{u}w_3", "20"]);
    db.run(&["HSET", "{u}h_1", "name", "one", "rank", "b"]);
    db.run(&["HSET", "{u}h_2", "name", "two", "rank", "a"]);
    // A missing weight is 0.
    assert_eq!(db.run(&["SORT", "{u}ids", "BY", "{u}w_*"]), list(&["4", "2", "3", "1"]));
    assert_eq!(
        db.run(&["SORT", "{u}ids", "BY", "{u}w_*", "GET", "#", "GET", "{u}h_*->name", "LIMIT", "1", "3"]),
        Reply::Array(vec![bulk("2"), bulk("two"), bulk("3"), Reply::Nil, bulk("1"), bulk("one")])
    );
    // Text weights from hash fields; a missing one sorts first.
    assert_eq!(db.run(&["SORT", "{u}ids", "BY", "{u}h_*->rank", "ALPHA", "LIMIT", "2", "2"]), list(&["2", "1"]));
    // A weight that is not a number, and a GET of a key of another type.
    db.run(&["SET", "{u}w_4", "heavy"]);
    assert_eq!(
        db.run(&["SORT", "{u}ids", "BY", "{u}w_*"]),
        err("ERR One or more scores can't be converted into double")
    );
    assert_eq!(
        db.run(&["SORT", "{u}ids", "BY", "nosort", "GET", "{u}h_*", "LIMIT", "0", "1"]),
        Reply::Array(vec![Reply::Nil])
    );
    // STORE makes a list; what a GET does not find is stored empty.
    assert_eq!(db.run(&["SORT", "{u}ids", "BY", "nosort", "GET", "{u}h_*->name", "STORE", "{u}names"]), int(4));
    assert_eq!(db.run(&["LRANGE", "{u}names", "0", "-1"]), list(&["one", "two", "", ""]));
    // An empty result deletes the destination, whatever it held.
    db.run(&["SET", "{u}gone", "x"]);
    assert_eq!(db.run(&["SORT", "{u}none", "STORE", "{u}gone"]), int(0));
    assert_eq!(db.run(&["EXISTS", "{u}gone"]), int(0));
    // Sorting a list into itself.
    db.run(&["DEL", "{u}w_4"]);
    assert_eq!(db.run(&["SORT", "{u}ids", "DESC", "STORE", "{u}ids"]), int(4));
    assert_eq!(db.run(&["LRANGE", "{u}ids", "0", "-1"]), list(&["4", "3", "2", "1"]));
}

#[test]
fn patterns_that_may_read_other_slots_are_refused() {
    let mut db = Db::new();
    db.run(&["RPUSH", "l", "1"]);
    for (args, option) in [
        (&["SORT", "l", "BY", "w_*"][..], "BY"),
        (&["SORT", "l", "BY", "w_*_{t}"], "BY"),
        (&["SORT", "l", "BY", "{}w_*"], "BY"),
        (&["SORT_RO", "l", "GET", "h_*->f"], "GET"),
    ] {
        assert_eq!(
            db.run(args),
            err(&format!(
                "ERR {option} option of SORT denied in Cluster mode when keys formed by the pattern may be in \
                 different slots."
            )),
            "{args:?}"
        );
    }
    // GET # and constant patterns read no key.
    assert_eq!(
        db.run(&["SORT", "l", "BY", "const", "GET", "#", "GET", "k"]),
        Reply::Array(vec![bulk("1"), Reply::Nil])
    );
}

#[test]
fn the_keys_include_the_patterns_slot() {
    use crate::kv::{parse, Command};
    let args = |a: &[&str]| a.iter().map(|s| s.as_bytes().to_vec()).collect::<Vec<_>>();
    let Ok(Command::Write(op)) = parse(args(&["SORT", "l", "BY", "{t}w_*", "GET", "#", "GET", "{u}x*", "STORE", "d"]))
    else {
        panic!()
    };
    assert_eq!(op.keys(), [&b"l"[..], b"d", b"{t}w_", b"{u}x"]);
    let Ok(Command::Read(op)) = parse(args(&["SORT", "l", "BY", "nosort", "GET", "{t}w_*"])) else { panic!() };
    assert_eq!(op.keys(), [&b"l"[..], b"{t}w_"]);
    let keys = crate::kv::command_reply(&crate::kv::CommandSub::GetKeys {
        args: args(&["SORT", "l", "GET", "store", "LIMIT", "0", "1", "STORE", "d"]),
        flags: false,
    });
    assert_eq!(keys, list(&["l", "d"]));
}

#[test]
fn a_weight_ends_at_its_first_nul_as_strtod_reads_it() {
    assert_eq!(super::weight(b"950\0\x003.5"), Some(950.0));
    assert_eq!(super::weight(b"\0abc"), Some(0.0));
    assert_eq!(super::weight(b" 2.5"), Some(2.5));
    assert_eq!(super::weight(b"x"), None);
}
