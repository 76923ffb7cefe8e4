//! Consumer groups against Redis 7.0's answers.

use super::test_db::{bulk, int, Db, T0};
use super::Reply;

fn err(s: &str) -> Reply {
    Reply::Error(s.to_string())
}

fn arr(items: Vec<Reply>) -> Reply {
    Reply::Array(items)
}

fn entry(id: &str, f: &str, v: &str) -> Reply {
    arr(vec![bulk(id), arr(vec![bulk(f), bulk(v)])])
}

/// A stream `x` with entries 1-0 .. n-0, each `f v`, and group `g` from 0.
fn stream_with_group(n: u64) -> Db {
    let mut db = Db::new();
    for i in 1..=n {
        db.run(&["XADD", "x", &format!("{i}-0"), "f", "v"]);
    }
    db.ok(&["XGROUP", "CREATE", "x", "g", "0"]);
    db
}

/// One field of a map reply.
fn field(map: &Reply, name: &str) -> Reply {
    let Reply::Map(fields) = map else { panic!("{map:?}") };
    fields.iter().find(|(k, _)| *k == bulk(name)).map(|(_, v)| v.clone()).expect(name)
}

fn first_group(db: &mut Db) -> Reply {
    let Reply::Array(groups) = field(&db.run(&["XINFO", "STREAM", "x", "FULL"]), "groups") else { panic!() };
    groups[0].clone()
}

#[test]
fn groups_are_created_once_and_need_their_stream() {
    let mut db = Db::new();
    assert_eq!(
        db.run(&["XGROUP", "CREATE", "s", "g", "$"]),
        err("ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the \
             MKSTREAM option to create an empty stream automatically.")
    );
    db.ok(&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    assert_eq!(db.run(&["XGROUP", "CREATE", "s", "g", "$"]), err("BUSYGROUP Consumer Group name already exists"));
    assert_eq!(
        db.run(&["XGROUP", "CREATECONSUMER", "s", "nope", "c"]),
        err("NOGROUP No such consumer group 'nope' for key name 's'")
    );
    assert_eq!(db.run(&["XGROUP", "CREATECONSUMER", "s", "g", "c"]), int(1));
    assert_eq!(db.run(&["XGROUP", "CREATECONSUMER", "s", "g", "c"]), int(0));
    assert_eq!(
        db.run(&["XGROUP", "CREATE", "s", "h", "0", "ENTRIESREAD", "-2"]),
        err("ERR value for ENTRIESREAD must be positive or -1")
    );
    assert_eq!(
        db.run(&["XGROUP", "CREATE", "s", "h", "0", "BOGUS"]),
        err("ERR unknown subcommand or wrong number of arguments for 'CREATE'. Try XGROUP HELP.")
    );
    assert_eq!(db.run(&["XGROUP", "HELP", "x"]), err("ERR wrong number of arguments for 'xgroup|help' command"));
    let Reply::Map(_) = db.run(&["XINFO", "STREAM", "s"]) else { panic!() };
    assert_eq!(field(&db.run(&["XINFO", "STREAM", "s"]), "groups"), int(1));
    assert_eq!(db.run(&["XGROUP", "DESTROY", "s", "g"]), int(1));
    assert_eq!(db.run(&["XGROUP", "DESTROY", "s", "g"]), int(0));
    // The group's rows went with it: only the empty stream's header is left.
    assert_eq!(db.stored(), 1);
}

#[test]
fn xreadgroup_delivers_new_entries_once_and_a_consumer_rereads_its_own() {
    let mut db = stream_with_group(4);
    let r = db.run2(&["XREADGROUP", "GROUP", "g", "alice", "COUNT", "2", "STREAMS", "x", ">"]);
    assert_eq!(r, arr(vec![arr(vec![bulk("x"), arr(vec![entry("1-0", "f", "v"), entry("2-0", "f", "v")])])]));
    let r = db.run2(&["XREADGROUP", "GROUP", "g", "bob", "STREAMS", "x", ">"]);
    assert_eq!(r, arr(vec![arr(vec![bulk("x"), arr(vec![entry("3-0", "f", "v"), entry("4-0", "f", "v")])])]));
    assert_eq!(db.run(&["XREADGROUP", "GROUP", "g", "bob", "STREAMS", "x", ">"]), Reply::NilArray);
    // History: a consumer's own pending entries, and a deleted one as nil.
    db.run(&["XDEL", "x", "1-0"]);
    let r = db.run2(&["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "x", "0"]);
    let gone = arr(vec![bulk("1-0"), Reply::NilArray]);
    assert_eq!(r, arr(vec![arr(vec![bulk("x"), arr(vec![gone, entry("2-0", "f", "v")])])]));
    let r = db.run2(&["XREADGROUP", "GROUP", "g", "carol", "STREAMS", "x", "0"]);
    assert_eq!(r, arr(vec![arr(vec![bulk("x"), arr(vec![])])]));
    assert_eq!(
        db.run(&["XREADGROUP", "GROUP", "nope", "c", "STREAMS", "x", ">"]),
        err("NOGROUP No such key 'x' or consumer group 'nope' in XREADGROUP with GROUP option")
    );
    assert_eq!(
        db.run(&["XREADGROUP", "COUNT", "1", "NOACK", "STREAMS", "x", ">"]),
        err("ERR Missing GROUP option for XREADGROUP")
    );
    // Acknowledged entries leave the PEL, each once.
    assert_eq!(db.run(&["XACK", "x", "g", "1-0", "2-0", "9-0"]), int(2));
    assert_eq!(db.run(&["XACK", "x", "g", "1-0"]), int(0));
    assert_eq!(
        db.run(&["XACK", "x", "g", "1-0", "bad"]),
        err("ERR Invalid stream ID specified as stream command argument")
    );
    let summary = db.run2(&["XPENDING", "x", "g"]);
    let owners = arr(vec![arr(vec![bulk("bob"), bulk("2")])]);
    assert_eq!(summary, arr(vec![int(2), bulk("3-0"), bulk("4-0"), owners]));
}

#[test]
fn xpending_lists_entries_by_range_idle_time_and_consumer() {
    let mut db = stream_with_group(3);
    db.run(&["XREADGROUP", "GROUP", "g", "alice", "COUNT", "1", "STREAMS", "x", ">"]);
    db.now += 100;
    db.run(&["XREADGROUP", "GROUP", "g", "bob", "STREAMS", "x", ">"]);
    db.now += 10;
    let pending = |db: &mut Db, args: &[&str]| match db.run(&[&["XPENDING", "x", "g"], args].concat()) {
        Reply::Array(items) => items,
        other => panic!("{other:?}"),
    };
    let all = pending(&mut db, &["-", "+", "10"]);
    assert_eq!(all[0], arr(vec![bulk("1-0"), bulk("alice"), int(110), int(1)]));
    assert_eq!(all[2], arr(vec![bulk("3-0"), bulk("bob"), int(10), int(1)]));
    assert_eq!(pending(&mut db, &["IDLE", "50", "-", "+", "10"]).len(), 1);
    assert_eq!(pending(&mut db, &["(1-0", "(3-0", "10"]).len(), 1);
    assert_eq!(pending(&mut db, &["-", "+", "10", "bob"]).len(), 2);
    assert_eq!(pending(&mut db, &["-", "+", "1", "bob"]).len(), 1);
    assert_eq!(pending(&mut db, &["-", "+", "10", "nobody"]).len(), 0);
    assert_eq!(db.run(&["XPENDING", "x", "g", "-", "+"]), err("ERR syntax error"));
    assert_eq!(db.run(&["XPENDING", "x", "nope"]), err("NOGROUP No such key 'x' or consumer group 'nope'"));
    assert_eq!(db.run(&["XPENDING", "x", "g", "IDLE", "1", "-", "+"]), err("ERR syntax error"));
}

#[test]
fn xclaim_moves_pending_entries_and_drops_those_whose_entries_went() {
    let mut db = stream_with_group(3);
    db.run(&["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "x", ">"]);
    db.now += 200;
    // Too recent for a 1 s minimum: nothing moves.
    assert_eq!(db.run(&["XCLAIM", "x", "g", "bob", "1000", "1-0"]), arr(vec![]));
    assert_eq!(db.run(&["XCLAIM", "x", "g", "bob", "10", "1-0"]), arr(vec![entry("1-0", "f", "v")]));
    db.run(&["XDEL", "x", "2-0"]);
    assert_eq!(db.run(&["XCLAIM", "x", "g", "bob", "0", "2-0", "3-0", "JUSTID"]), arr(vec![bulk("3-0")]));
    let bob = db.run(&["XPENDING", "x", "g", "-", "+", "10", "bob"]);
    assert_eq!(
        bob,
        arr(vec![
            arr(vec![bulk("1-0"), bulk("bob"), int(0), int(2)]),
            // JUSTID leaves the delivery count alone.
            arr(vec![bulk("3-0"), bulk("bob"), int(0), int(1)]),
        ])
    );
    assert_eq!(db.run(&["XPENDING", "x", "g", "-", "+", "10", "alice"]), arr(vec![]));
    assert_eq!(
        db.run(&["XCLAIM", "x", "g", "bob", "0", "1-0", "RETRYCOUNT", "7", "IDLE", "50", "JUSTID"]),
        arr(vec![bulk("1-0")])
    );
    let first = db.run(&["XPENDING", "x", "g", "-", "+", "1"]);
    assert_eq!(first, arr(vec![arr(vec![bulk("1-0"), bulk("bob"), int(50), int(7)])]));
    assert_eq!(
        db.run(&["XCLAIM", "x", "g", "bob", "0", "1-0", "BOGUS"]),
        err("ERR Unrecognized XCLAIM option 'BOGUS'")
    );
    // FORCE makes a pending entry of one nobody had.
    db.run(&["XADD", "x", "4-0", "f", "v"]);
    assert_eq!(db.run(&["XCLAIM", "x", "g", "carol", "0", "4-0", "FORCE", "JUSTID"]), arr(vec![bulk("4-0")]));
    assert_eq!(field(&first_group(&mut db), "pel-count"), int(3));
}

#[test]
fn xautoclaim_walks_the_pel_with_a_cursor() {
    let mut db = stream_with_group(5);
    db.run(&["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "x", ">"]);
    db.run(&["XDEL", "x", "2-0"]);
    let r = db.run(&["XAUTOCLAIM", "x", "g", "bob", "0", "0-0", "COUNT", "2"]);
    assert_eq!(r, arr(vec![bulk("3-0"), arr(vec![entry("1-0", "f", "v")]), arr(vec![bulk("2-0")])]));
    let r = db.run(&["XAUTOCLAIM", "x", "g", "bob", "0", "3-0", "COUNT", "5", "JUSTID"]);
    assert_eq!(r, arr(vec![bulk("0-0"), arr(vec![bulk("3-0"), bulk("4-0"), bulk("5-0")]), arr(vec![])]));
    assert_eq!(db.run(&["XAUTOCLAIM", "x", "g", "bob", "0", "0", "COUNT", "0"]), err("ERR COUNT must be > 0"));
    assert_eq!(db.run(&["XPENDING", "x", "g", "-", "+", "10", "alice"]), arr(vec![]));
    // DELCONSUMER drops its pending entries and says how many.
    assert_eq!(db.run(&["XGROUP", "DELCONSUMER", "x", "g", "bob"]), int(4));
    assert_eq!(db.run(&["XPENDING", "x", "g"]), arr(vec![int(0), Reply::Nil, Reply::Nil, Reply::NilArray]));
}

#[test]
fn entries_read_and_lag_follow_redis() {
    let mut db = stream_with_group(5);
    assert_eq!(field(&first_group(&mut db), "entries-read"), Reply::Nil);
    assert_eq!(field(&first_group(&mut db), "lag"), int(5));
    db.run(&["XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "x", ">"]);
    assert_eq!(field(&first_group(&mut db), "entries-read"), int(1));
    assert_eq!(field(&first_group(&mut db), "lag"), int(4));
    db.run(&["XREADGROUP", "GROUP", "g", "c", "STREAMS", "x", ">"]);
    db.run(&["XADD", "x", "6-0", "f", "v"]);
    assert_eq!(field(&first_group(&mut db), "entries-read"), int(5));
    assert_eq!(field(&first_group(&mut db), "lag"), int(1));

    // A deletion ahead of the group makes both unknown until it passes.
    let mut db = Db::new();
    for i in 1..=5 {
        db.run(&["XADD", "x", &format!("{i}-0"), "f", "v"]);
    }
    db.run(&["XDEL", "x", "3-0"]);
    db.ok(&["XGROUP", "CREATE", "x", "g", "0"]);
    assert_eq!(field(&first_group(&mut db), "lag"), Reply::Nil);
    for _ in 0..3 {
        db.run(&["XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "x", ">"]);
    }
    assert_eq!(field(&first_group(&mut db), "entries-read"), Reply::Nil);
    db.run(&["XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "x", ">"]);
    assert_eq!(field(&first_group(&mut db), "entries-read"), int(5));
    assert_eq!(field(&first_group(&mut db), "lag"), int(0));
}

#[test]
fn xinfo_describes_groups_and_consumers() {
    let mut db = stream_with_group(3);
    db.run(&["XREADGROUP", "GROUP", "g", "alice", "COUNT", "1", "STREAMS", "x", ">"]);
    db.now += 30;
    db.run(&["XGROUP", "CREATECONSUMER", "x", "g", "bob"]);
    let Reply::Array(groups) = db.run(&["XINFO", "GROUPS", "x"]) else { panic!() };
    assert_eq!(field(&groups[0], "consumers"), int(2));
    assert_eq!(field(&groups[0], "pending"), int(1));
    assert_eq!(field(&groups[0], "last-delivered-id"), bulk("1-0"));
    let Reply::Array(consumers) = db.run(&["XINFO", "CONSUMERS", "x", "g"]) else { panic!() };
    assert_eq!(field(&consumers[0], "name"), bulk("alice"));
    assert_eq!(field(&consumers[0], "idle"), int(30));
    assert_eq!(field(&consumers[1], "pending"), int(0));
    assert_eq!(db.run(&["XINFO", "CONSUMERS", "x", "h"]), err("NOGROUP No such consumer group 'h' for key name 'x'"));
    let g = first_group(&mut db);
    assert_eq!(field(&g, "pending"), arr(vec![arr(vec![bulk("1-0"), bulk("alice"), int(T0 as i64), int(1)])]));
    let Reply::Array(consumers) = field(&g, "consumers") else { panic!() };
    assert_eq!(field(&consumers[0], "pending"), arr(vec![arr(vec![bulk("1-0"), int(T0 as i64), int(1)])]));
    // COPY takes the groups along.
    db.run(&["COPY", "x", "y"]);
    assert_eq!(db.run(&["XINFO", "GROUPS", "y"]), db.run(&["XINFO", "GROUPS", "x"]));
}

fn dump(db: &mut Db, key: &str) -> Vec<u8> {
    match db.run(&["DUMP", key]) {
        Reply::Bulk(p) => p,
        other => panic!("DUMP {key}: {other:?}"),
    }
}

fn restore(db: &mut Db, key: &str, payload: &[u8]) -> Reply {
    db.run_bytes(vec![b"RESTORE".to_vec(), key.as_bytes().to_vec(), b"0".to_vec(), payload.to_vec()])
}

#[test]
fn a_stream_with_groups_dumps_and_restores_whole() {
    let mut db = Db::new();
    for i in 1..=250 {
        let fields: Vec<String> = if i % 7 == 0 {
            vec!["other".into(), i.to_string(), "x".into(), "y".into()]
        } else {
            vec!["f".into(), i.to_string()]
        };
        let mut args = vec!["XADD".to_string(), "s".into(), format!("{i}-{}", i % 3)];
        args.extend(fields);
        db.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    }
    db.run(&["XDEL", "s", "5-2", "100-1"]);
    db.ok(&["XGROUP", "CREATE", "s", "g1", "0"]);
    db.ok(&["XGROUP", "CREATE", "s", "g2", "$"]);
    db.run(&["XREADGROUP", "GROUP", "g1", "alice", "COUNT", "3", "STREAMS", "s", ">"]);
    db.run(&["XREADGROUP", "GROUP", "g1", "bob", "COUNT", "2", "STREAMS", "s", ">"]);
    db.run(&["XGROUP", "CREATECONSUMER", "s", "g2", "carol"]);
    let payload = dump(&mut db, "s");
    assert_eq!(restore(&mut db, "t", &payload), Reply::Ok);
    assert_eq!(
        db.run(&["XINFO", "STREAM", "t", "FULL", "COUNT", "0"]),
        db.run(&["XINFO", "STREAM", "s", "FULL", "COUNT", "0"])
    );
    assert_eq!(db.run(&["XRANGE", "t", "-", "+"]), db.run(&["XRANGE", "s", "-", "+"]));
    assert_eq!(
        db.run(&["XREVRANGE", "t", "+", "-", "COUNT", "5"]),
        db.run(&["XREVRANGE", "s", "+", "-", "COUNT", "5"])
    );
    // A cut payload is refused.
    let cut = &payload[..payload.len() / 2];
    assert_eq!(restore(&mut db, "u", cut), err("ERR DUMP payload version or checksum are wrong"));
    // An empty stream dumps too.
    db.run(&["XADD", "e", "MAXLEN", "0", "5-5", "a", "b"]);
    let payload = dump(&mut db, "e");
    assert_eq!(restore(&mut db, "e2", &payload), Reply::Ok);
    assert_eq!(db.run(&["XINFO", "STREAM", "e2", "FULL"]), db.run(&["XINFO", "STREAM", "e", "FULL"]));
}

#[test]
fn a_redis_5_stream_payload_restores_with_its_groups() {
    // Redis's own test payload (unit/type/stream-cgroups): a stream of
    // type 15 with entries 1..6 less 3, two groups, g1 having read 4.
    let hex = "0f011000000000000000010000000000000000c3404a405716570000002300020104010101846461746105000103010020010381\
               610204200a0001400a0062600a0002400a0063600a4022018164200a4039200a0065600a0005400a0066200a00ff02060002026731\
               050004000000000000000100000000000000003ef783437a01000001000000000000000200000000000000003ef783437a010000\
               01000000000000000400000000000000003ef783437a01000001000000000000000500000000000000003ef783437a0100000101\
               036331313ef783437a0100000400000000000000010000000000000000000000000000000200000000000000000000000000000004\
               0000000000000000000000000000000500000000000000000267320000000009003d52ef6867521dfa";
    let payload: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
    let mut db = Db::new();
    assert_eq!(restore(&mut db, "x", &payload), Reply::Ok);
    let full = db.run(&["XINFO", "STREAM", "x", "FULL"]);
    assert_eq!(field(&full, "max-deleted-entry-id"), bulk("0-0"));
    assert_eq!(field(&full, "entries-added"), int(2));
    let Reply::Array(groups) = field(&full, "groups") else { panic!() };
    assert_eq!(field(&groups[0], "entries-read"), int(1));
    assert_eq!(field(&groups[0], "lag"), int(1));
    assert_eq!(field(&groups[1], "entries-read"), int(0));
    assert_eq!(field(&groups[1], "lag"), int(2));
    assert_eq!(field(&groups[0], "pel-count"), int(4));
}

#[test]
fn a_stream_named_twice_in_xreadgroup_is_served_once() {
    let mut db = stream_with_group(2);
    let r = db.run2(&["XREADGROUP", "GROUP", "g", "c", "STREAMS", "x", "x", ">", ">"]);
    assert_eq!(r, arr(vec![arr(vec![bulk("x"), arr(vec![entry("1-0", "f", "v"), entry("2-0", "f", "v")])])]));
    let owners = arr(vec![arr(vec![bulk("c"), bulk("2")])]);
    assert_eq!(db.run2(&["XPENDING", "x", "g"]), arr(vec![int(2), bulk("1-0"), bulk("2-0"), owners]));
    assert_eq!(db.run(&["XGROUP", "DELCONSUMER", "x", "g", "c"]), int(2));
    assert_eq!(field(&first_group(&mut db), "consumers"), arr(vec![]));
}

#[test]
fn lag_goes_negative_when_entriesread_says_more_than_was_added() {
    let mut db = stream_with_group(3);
    db.ok(&["XGROUP", "SETID", "x", "g", "$", "ENTRIESREAD", "100"]);
    assert_eq!(field(&first_group(&mut db), "lag"), int(-97));
}

#[test]
fn a_consumer_named_by_the_empty_string_dumps_and_restores() {
    let mut db = stream_with_group(2);
    db.run(&["XREADGROUP", "GROUP", "g", "", "STREAMS", "x", ">"]);
    let payload = dump(&mut db, "x");
    assert_eq!(restore(&mut db, "y", &payload), Reply::Ok);
    assert_eq!(db.run(&["XPENDING", "y", "g"]), db.run(&["XPENDING", "x", "g"]));
}

#[test]
fn copies_of_a_node_s_field_names_count_against_the_restore_limit() {
    use super::rdb::{decode, encode, Refusal, StreamValue, Value};
    use super::stream::StreamId;
    // One long field name shared by many entries: a small payload that
    // would decode into gigabytes of copies.
    let name = vec![b'f'; 100_000];
    let entries: Vec<_> = (1..=2_000u64).map(|i| (StreamId::new(i, 0), vec![(name.clone(), b"v".to_vec())])).collect();
    let v = StreamValue {
        nodes: vec![(StreamId::new(1, 0), entries)],
        length: 2_000,
        last: StreamId::new(2_000, 0),
        first: StreamId::new(1, 0),
        max_deleted: StreamId::MIN,
        added: 2_000,
        groups: Vec::new(),
    };
    let payload = encode(&Value::Stream(Box::new(v)));
    assert!(payload.len() < 200_000, "{}", payload.len());
    assert_eq!(decode(&payload), Err(Refusal::TooLarge));
}
