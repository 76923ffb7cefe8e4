//! Hash commands against the in-memory store, with Redis 7.0's replies.

use crate::kv::test_db::*;
use crate::kv::{Reply, WriteOp};

fn sorted(r: Reply) -> Vec<Reply> {
    let mut v = match r {
        Reply::Array(v) | Reply::Set(v) => v,
        Reply::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        other => panic!("not a collection: {other:?}"),
    };
    v.sort_by_key(|r| format!("{r:?}"));
    v
}

#[test]
fn fields_are_set_read_and_deleted() {
    let mut db = Db::new();
    assert_eq!(db.run(&["HSET", "h", "a", "1", "b", "2", "a", "3"]), int(2));
    assert_eq!(db.run(&["HGET", "h", "a"]), bulk("3"));
    assert_eq!(db.run(&["HLEN", "h"]), int(2));
    assert_eq!(db.run(&["HMGET", "h", "a", "nope", "b"]), Reply::Array(vec![bulk("3"), Reply::Nil, bulk("2")]));
    assert_eq!(db.run(&["HEXISTS", "h", "b"]), int(1));
    assert_eq!(db.run(&["HSTRLEN", "h", "b"]), int(1));
    assert_eq!(db.run(&["HSETNX", "h", "a", "9"]), int(0));
    assert_eq!(db.run(&["HSETNX", "h", "c", "9"]), int(1));
    assert_eq!(
        sorted(db.run(&["HGETALL", "h"])),
        vec![bulk("2"), bulk("3"), bulk("9"), bulk("a"), bulk("b"), bulk("c")]
    );
    assert_eq!(sorted(db.run(&["HKEYS", "h"])), vec![bulk("a"), bulk("b"), bulk("c")]);
    assert_eq!(db.run(&["HMSET", "h", "d", "4"]), Reply::Ok);
    assert_eq!(db.run(&["TYPE", "h"]), Reply::simple("hash"));
    assert_eq!(db.run(&["HDEL", "h", "a", "a", "nope"]), int(1));
    assert_eq!(db.run(&["HDEL", "h", "b", "c", "d"]), int(3));
    // The last field gone, the key is gone, and so are its rows.
    assert_eq!(db.run(&["EXISTS", "h"]), int(0));
    assert_eq!(db.store.element_rows(), 0);
    assert_eq!(db.run(&["HGETALL", "h"]), Reply::Map(Vec::new()));
    assert_eq!(db.run(&["HSET", "h", "a"]), err("ERR wrong number of arguments for 'hset' command"));
}

#[test]
fn increments_follow_redis() {
    let mut db = Db::new();
    assert_eq!(db.run(&["HINCRBY", "h", "n", "5"]), int(5));
    assert_eq!(db.run(&["HINCRBY", "h", "n", "-7"]), int(-2));
    assert_eq!(db.run(&["HINCRBY", "h", "n", "x"]), err("ERR value is not an integer or out of range"));
    db.run(&["HSET", "h", "s", "abc", "big", "9223372036854775807"]);
    assert_eq!(db.run(&["HINCRBY", "h", "s", "1"]), err("ERR hash value is not an integer"));
    assert_eq!(db.run(&["HINCRBY", "h", "big", "1"]), err("ERR increment or decrement would overflow"));
    assert_eq!(db.run(&["HINCRBYFLOAT", "h", "f", "10.5"]), bulk("10.5"));
    assert_eq!(db.run(&["HINCRBYFLOAT", "h", "f", "0.1"]), bulk("10.6"));
    assert_eq!(db.run(&["HINCRBYFLOAT", "h", "s", "1"]), err("ERR hash value is not a float"));
    assert_eq!(db.run(&["HINCRBYFLOAT", "h", "f", "x"]), err("ERR value is not a valid float"));
    assert_eq!(db.run(&["HINCRBYFLOAT", "h", "f", "inf"]), err("ERR value is NaN or Infinity"));
    db.run(&["HSET", "h", "huge", "1.1e4932"]);
    assert_eq!(db.run(&["HINCRBYFLOAT", "h", "huge", "1.1e4932"]), err("ERR increment would produce NaN or Infinity"));
    assert_eq!(db.run(&["HLEN", "h"]), int(5));
}

#[test]
fn other_types_are_wrongtype_both_ways() {
    let mut db = Db::new();
    db.ok(&["SET", "s", "v"]);
    db.run(&["HSET", "h", "f", "v"]);
    let wrong = err("WRONGTYPE Operation against a key holding the wrong kind of value");
    assert_eq!(db.run(&["HSET", "s", "f", "v"]), wrong);
    assert_eq!(db.run(&["HGET", "s", "f"]), wrong);
    assert_eq!(db.run(&["HLEN", "s"]), wrong);
    assert_eq!(db.run(&["GET", "h"]), wrong);
    assert_eq!(db.run(&["APPEND", "h", "x"]), wrong);
    assert_eq!(db.run(&["INCR", "h"]), wrong);
    assert_eq!(db.run(&["SET", "h", "x", "GET"]), wrong);
    assert_eq!(db.run(&["MGET", "h", "s"]), Reply::Array(vec![Reply::Nil, bulk("v")]));
    // A plain SET replaces the hash, rows and all.
    db.ok(&["SET", "h", "x"]);
    assert_eq!(db.run(&["GET", "h"]), bulk("x"));
    assert_eq!(db.store.element_rows(), 0);
}

#[test]
fn keyspace_commands_carry_the_rows() {
    let mut db = Db::new();
    // Too large to be packed: the fields are element rows.
    let long = "x".repeat(5000);
    db.run(&["HSET", "{t}a", "f", "1", "g", &long]);
    assert_eq!(db.store.element_rows(), 2);
    assert_eq!(db.run(&["COPY", "{t}a", "{t}b"]), int(1));
    assert_eq!(db.run(&["RENAME", "{t}a", "{t}c"]), Reply::Ok);
    assert_eq!(db.run(&["HGETALL", "{t}a"]), Reply::Map(Vec::new()));
    assert_eq!(db.run(&["HGET", "{t}b", "g"]), bulk(&long));
    assert_eq!(db.run(&["HGET", "{t}c", "f"]), bulk("1"));
    assert_eq!(db.store.element_rows(), 4);
    assert_eq!(db.run(&["DBSIZE"]), int(2));
    assert_eq!(db.run(&["OBJECT", "ENCODING", "{t}b"]), bulk("hashtable"));
    assert_eq!(db.run(&["PEXPIRE", "{t}b", "10"]), int(1));
    db.now += 11;
    assert_eq!(db.run(&["HLEN", "{t}b"]), int(0));
    // A write finds the expired hash and removes its rows; the new hash
    // under the key is small, and packed.
    assert_eq!(db.run(&["HSET", "{t}b", "z", "1"]), int(1));
    assert_eq!(db.store.element_rows(), 2);
    assert_eq!(db.run(&["DEL", "{t}b", "{t}c"]), int(2));
    assert_eq!(db.store.element_rows(), 0);
    assert_eq!(db.stored(), 0);
}

/// Field `i` of the hashes the packing tests build.
fn field(i: usize) -> (String, String) {
    (format!("f{i}"), format!("{}", i % 10))
}

fn hset(db: &mut Db, key: &str, fields: impl Iterator<Item = (String, String)>) -> Reply {
    let mut args = vec!["HSET".to_string(), key.to_string()];
    args.extend(fields.flat_map(|(f, v)| [f, v]));
    db.run(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

#[test]
fn a_small_hash_keeps_its_fields_in_its_record_until_it_outgrows_it() {
    let mut db = Db::new();
    assert_eq!(hset(&mut db, "h", (0..128).map(field)), int(128));
    assert_eq!((db.stored(), db.store.element_rows()), (1, 0), "128 short fields: packed");
    assert_eq!(db.run(&["HGET", "h", "f77"]), bulk("7"));
    assert_eq!(hset(&mut db, "h", (128..129).map(field)), int(1));
    assert_eq!(db.store.element_rows(), 129, "the 129th field writes every field out");
    assert_eq!(db.run(&["HDEL", "h", "f0", "f1", "f2"]), int(3));
    assert_eq!(db.store.element_rows(), 126, "and they stay out");
    assert_eq!(db.run(&["HGET", "h", "f77"]), bulk("7"));
    // Size in bytes counts too.
    db.run(&["HSET", "big", "a", "1"]);
    assert_eq!(db.store.element_rows(), 126);
    db.run(&["HSET", "big", "b", &"x".repeat(5000)]);
    assert_eq!(db.store.element_rows(), 128);
    assert_eq!(db.run(&["HSTRLEN", "big", "b"]), int(5000));
    // An empty hash is no hash, packed or not.
    assert_eq!(db.run(&["HDEL", "big", "a", "b"]), int(2));
    assert_eq!(db.run(&["EXISTS", "big"]), int(0));
    assert_eq!(db.store.element_rows(), 126);
}

/// A packed hash answers every command as the same fields written out as
/// element rows do: replies, DUMP's payload, SORT's lookups, COPY,
/// RENAME, expiry.
#[test]
fn a_packed_hash_answers_as_one_with_element_rows() {
    let (mut packed, mut rows) = (Db::new(), Db::new());
    hset(&mut packed, "{h}a", (0..40).map(field));
    // The same fields, once joined by one too long to pack, then without it.
    hset(&mut rows, "{h}a", (0..40).map(field));
    rows.run(&["HSET", "{h}a", "long", &"x".repeat(5000)]);
    rows.run(&["HDEL", "{h}a", "long"]);
    assert_eq!((packed.store.element_rows(), rows.store.element_rows()), (0, 40));
    for db in [&mut packed, &mut rows] {
        db.run(&["RPUSH", "{h}l", "3", "1", "2"]);
        for i in 1..=3 {
            db.run(&["HSET", &format!("{{h}}w{i}"), "weight", &(10 - i).to_string()]);
        }
    }
    let commands: &[&[&str]] = &[
        &["HGETALL", "{h}a"],
        &["HKEYS", "{h}a"],
        &["HVALS", "{h}a"],
        &["HLEN", "{h}a"],
        &["HMGET", "{h}a", "f3", "nope", "f39"],
        &["HEXISTS", "{h}a", "f9"],
        &["HSTRLEN", "{h}a", "f12"],
        &["HSCAN", "{h}a", "0", "COUNT", "5"],
        &["HSCAN", "{h}a", "0", "MATCH", "f1*", "COUNT", "100"],
        &["HRANDFIELD", "{h}a", "-7", "WITHVALUES"],
        &["HRANDFIELD", "{h}a", "5"],
        &["DUMP", "{h}a"],
        &["SORT", "{h}l", "BY", "{h}w*->weight", "GET", "{h}w*->weight"],
        &["HINCRBY", "{h}a", "n", "5"],
        &["HINCRBYFLOAT", "{h}a", "n", "0.5"],
        &["HSETNX", "{h}a", "f1", "again"],
        &["HSETNX", "{h}a", "fresh", "1"],
        &["HSET", "{h}a", "f1", "changed", "f2", "too"],
        &["HDEL", "{h}a", "f0", "nope"],
        &["HGETALL", "{h}a"],
        &["COPY", "{h}a", "{h}b"],
        &["RENAME", "{h}a", "{h}c"],
        &["HGETALL", "{h}b"],
        &["HGETALL", "{h}c"],
        &["PEXPIRE", "{h}c", "10"],
    ];
    for args in commands {
        assert_eq!(packed.run(args), rows.run(args), "{args:?}");
    }
    let Reply::Bulk(dumped) = packed.run(&["DUMP", "{h}b"]) else { panic!("DUMP") };
    for db in [&mut packed, &mut rows] {
        db.now += 11;
        assert_eq!(db.run(&["HLEN", "{h}c"]), int(0));
        let restore = [&b"RESTORE"[..], b"{h}d", b"0", &dumped].map(<[u8]>::to_vec);
        assert_eq!(db.run_bytes(restore.to_vec()), Reply::Ok);
    }
    assert_eq!(packed.run(&["HGETALL", "{h}d"]), rows.run(&["HGETALL", "{h}b"]));
    assert_eq!(packed.store.element_rows(), 0, "the list is packed too");
}

#[test]
fn hscan_returns_every_field_once_across_pages() {
    let mut db = Db::new();
    for i in 0..300 {
        db.run(&["HSET", "h", &format!("f{i}"), &i.to_string()]);
    }
    let mut cursor = "0".to_string();
    let mut seen = std::collections::BTreeSet::new();
    let mut pages = 0;
    loop {
        let Reply::Array(parts) = db.run(&["HSCAN", "h", &cursor, "COUNT", "7"]) else { panic!() };
        let (Reply::Bulk(next), Reply::Array(items)) = (&parts[0], &parts[1]) else { panic!() };
        for pair in items.chunks(2) {
            assert!(seen.insert(format!("{:?}", pair[0])), "{:?} twice", pair[0]);
        }
        // Deleting a field already returned disturbs nothing.
        if let Some(Reply::Bulk(f)) = items.first() {
            db.run_bytes(vec![b"HDEL".to_vec(), b"h".to_vec(), f.clone()]);
        }
        pages += 1;
        cursor = String::from_utf8(next.clone()).unwrap();
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen.len(), 300);
    assert!(pages > 30, "{pages} pages");
    let Reply::Array(parts) = db.run(&["HSCAN", "h", "0", "COUNT", "1000", "MATCH", "f1?"]) else { panic!() };
    assert!(matches!(&parts[1], Reply::Array(items) if items.len() <= 20 && !items.is_empty()));
    assert_eq!(db.run(&["HSCAN", "h", "x"]), err("ERR invalid cursor"));
}

#[test]
fn random_fields_follow_the_count_rules() {
    let mut db = Db::new();
    db.run(&["HSET", "h", "a", "1", "b", "2", "c", "3"]);
    let op = |count: Option<i64>, values: bool, seed: u64| {
        let op = crate::kv::ReadOp::Hash { key: b"h".to_vec(), op: super::HashRead::RandField { count, values, seed } };
        crate::kv::test_db::resp2(crate::kv::read(&op, db.now, &db.store).unwrap())
    };
    assert!(matches!(op(None, false, 1), Reply::Bulk(_)));
    let Reply::Array(all) = op(Some(10), false, 2) else { panic!() };
    assert_eq!(all.len(), 3);
    let Reply::Array(two) = op(Some(2), true, 3) else { panic!() };
    assert_eq!(two.len(), 4);
    assert_ne!(two[0], two[2]);
    let Reply::Array(many) = op(Some(-10), false, 4) else { panic!() };
    assert_eq!(many.len(), 10);
    assert_eq!(op(Some(0), false, 5), Reply::Array(Vec::new()));
    // Every field comes up.
    let picked: std::collections::BTreeSet<_> = (0..64).map(|s| format!("{:?}", op(None, false, s))).collect();
    assert_eq!(picked.len(), 3);
    assert_eq!(db.run(&["HRANDFIELD", "h", "1", "WITHVALUE"]), err("ERR syntax error"));
}

#[test]
fn a_hash_in_a_transaction_bumps_its_version() {
    let mut db = Db::new();
    db.run(&["HSET", "h", "a", "1"]);
    let version = |db: &Db| crate::kv::KvStore::get(&db.store, b"h").unwrap().unwrap();
    let before = version(&db);
    let op = WriteOp::Hash {
        key: b"h".to_vec(),
        op: super::HashWrite::Set { pairs: vec![(b"a".to_vec(), b"2".to_vec())], ok: false },
    };
    assert_eq!(crate::kv::apply(&op, db.now, &mut db.store).unwrap(), int(0));
    // The header was rewritten (a stamping store gives it a new version).
    assert_eq!(version(&db).kind, before.kind);
    assert_eq!(db.run(&["HGET", "h", "a"]), bulk("2"));
}

#[test]
fn a_hash_that_outgrew_listpack_stays_hashtable_as_in_redis() {
    let mut db = Db::new();
    let long = "v".repeat(65);
    db.run(&["HSET", "h", "a", "1", "b", &long]);
    assert_eq!(db.run(&["OBJECT", "ENCODING", "h"]), bulk("hashtable"));
    assert_eq!(db.run(&["HDEL", "h", "b"]), int(1));
    assert_eq!(db.run(&["OBJECT", "ENCODING", "h"]), bulk("hashtable"), "a value once too long");
    let fields: Vec<String> = (0..513).flat_map(|i| [format!("f{i}"), "x".into()]).collect();
    let mut hset = vec!["HSET", "many"];
    hset.extend(fields.iter().map(String::as_str));
    db.run(&hset);
    db.run(&["HDEL", "many", "f0", "f1"]);
    assert_eq!(db.run(&["OBJECT", "ENCODING", "many"]), bulk("hashtable"), "once too many fields");
    db.run(&["HSET", "small", "a", "1"]);
    assert_eq!(db.run(&["OBJECT", "ENCODING", "small"]), bulk("listpack"));
    // Deleted, its past goes with it.
    db.run(&["DEL", "h"]);
    db.run(&["HSET", "h", "a", "1"]);
    assert_eq!(db.run(&["OBJECT", "ENCODING", "h"]), bulk("listpack"));
}

fn flat(r: Reply) -> Vec<Reply> {
    match r {
        Reply::Array(v) => v,
        Reply::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        other => panic!("not a collection: {other:?}"),
    }
}

fn bulks(items: &[&str]) -> Vec<Reply> {
    items.iter().map(|s| bulk(s)).collect()
}

#[test]
fn fields_come_in_the_order_they_were_added() {
    let mut db = Db::new();
    db.run(&["HSET", "h", "zeta", "1", "alpha", "2", "mid", "3"]);
    assert_eq!(flat(db.run(&["HKEYS", "h"])), bulks(&["zeta", "alpha", "mid"]));
    // Set again or incremented, a field keeps its place; values read bare.
    db.run(&["HSET", "h", "zeta", "10"]);
    assert_eq!(db.run(&["HINCRBY", "h", "alpha", "5"]), int(7));
    assert_eq!(db.run(&["HINCRBYFLOAT", "h", "mid", "0.5"]), bulk("3.5"));
    assert_eq!(db.run(&["HSETNX", "h", "new", "x"]), int(1));
    assert_eq!(flat(db.run(&["HGETALL", "h"])), bulks(&["zeta", "10", "alpha", "7", "mid", "3.5", "new", "x"]));
    // Deleted and added again, it goes to the end.
    db.run(&["HDEL", "h", "zeta"]);
    db.run(&["HSET", "h", "zeta", "z"]);
    assert_eq!(flat(db.run(&["HVALS", "h"])), bulks(&["7", "3.5", "x", "z"]));
    assert_eq!(db.run(&["HGET", "h", "mid"]), bulk("3.5"));
    assert_eq!(db.run(&["HSTRLEN", "h", "alpha"]), int(1));
    assert_eq!(db.run(&["HMGET", "h", "new", "zeta"]), Reply::Array(bulks(&["x", "z"])));
    // HRANDFIELD asked for every field gives the hash in its order.
    assert_eq!(flat(db.run(&["HRANDFIELD", "h", "10"])), bulks(&["alpha", "mid", "new", "zeta"]));
    // HSCAN returns values, not rows.
    let Reply::Array(page) = db.run(&["HSCAN", "h", "0", "MATCH", "mid", "COUNT", "100"]) else { panic!() };
    assert_eq!(page[1], Reply::Array(bulks(&["mid", "3.5"])));
    // SORT reads the values through `->`.
    db.run(&["RPUSH", "{l}", "b", "a"]);
    db.run(&["HSET", "{l}w_a", "n", "2"]);
    db.run(&["HSET", "{l}w_b", "n", "1"]);
    assert_eq!(flat(db.run(&["SORT", "{l}", "BY", "{l}w_*->n", "GET", "{l}w_*->n"])), bulks(&["1", "2"]));
    // Emptied, the hash is gone with its count: a new one starts over.
    db.run(&["DEL", "h"]);
    db.run(&["HSET", "h", "b", "1", "a", "2"]);
    assert_eq!(flat(db.run(&["HKEYS", "h"])), bulks(&["b", "a"]));
}

#[test]
fn the_order_holds_past_a_one_byte_field_number() {
    let mut db = Db::new();
    let names: Vec<String> = (0..300).rev().map(|i| format!("f{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        db.run(&["HSET", "h", name, &i.to_string()]);
    }
    let keys = flat(db.run(&["HKEYS", "h"]));
    assert_eq!(keys, names.iter().map(|n| bulk(n)).collect::<Vec<_>>());
    assert_eq!(db.run(&["HGET", "h", "f0"]), bulk("299"));
    assert_eq!(db.run(&["HINCRBY", "h", "f0", "1"]), int(300));
    assert_eq!(flat(db.run(&["HKEYS", "h"])).last(), Some(&bulk("f0")));
    // DUMP writes the fields in that order; RESTORE numbers them so.
    let dump = db.run(&["DUMP", "h"]);
    let Reply::Bulk(payload) = dump else { panic!("{dump:?}") };
    db.run_bytes(vec![b"RESTORE".to_vec(), b"h2".to_vec(), b"0".to_vec(), payload]);
    assert_eq!(flat(db.run(&["HKEYS", "h2"])), keys);
}

#[test]
fn a_hash_stored_before_fields_were_numbered_still_reads_and_writes() {
    use crate::kv::record::{Kind, Record};
    use crate::kv::store::KvStore;
    let mut db = Db::new();
    // A header of two words (size and past) and bare values, as stored
    // before fields were numbered.
    let mut header = 2u64.to_be_bytes().to_vec();
    header.extend_from_slice(&0i64.to_be_bytes());
    db.store.put(b"old", &Record::collection(Kind::Hash, header, None)).unwrap();
    for (f, v) in [("a", "1"), ("b", "22")] {
        db.store.elem_put(b"old", &super::super::collection::member_sub(f.as_bytes()), v.as_bytes()).unwrap();
    }
    assert_eq!(db.run(&["HGET", "old", "b"]), bulk("22"));
    assert_eq!(db.run(&["HINCRBY", "old", "a", "4"]), int(5));
    assert_eq!(db.run(&["HSET", "old", "c", "3"]), int(1));
    assert_eq!(sorted(db.run(&["HGETALL", "old"])), sorted(Reply::Array(bulks(&["a", "5", "b", "22", "c", "3"]))));
    assert_eq!(db.run(&["HSTRLEN", "old", "b"]), int(2));
    // It stays unnumbered: its rows still hold bare values.
    let rows: Vec<Vec<u8>> =
        super::super::collection::elements(&db.store, b"old").unwrap().into_iter().map(|(_, v)| v).collect();
    let mut rows: Vec<&[u8]> = rows.iter().map(Vec::as_slice).collect();
    rows.sort();
    assert_eq!(rows, [&b"22"[..], b"3", b"5"]);
}
