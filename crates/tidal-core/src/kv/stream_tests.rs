//! Streams against Redis 7.0's answers, and the node chain against a
//! plain ordered map under random adds, deletes and trims.

use std::collections::BTreeMap;

use super::stream::{NodeLimits, StreamId};
use super::test_db::{bulk, int, Db, T0};
use super::{apply, parse, Command, Reply};
use crate::dice::Dice;

fn err(s: &str) -> Reply {
    Reply::Error(s.to_string())
}

/// A command run with nodes of at most `max_entries` entries, as after
/// `CONFIG SET stream-node-max-entries`.
fn with_nodes(db: &mut Db, max_entries: u64, args: &[&str]) -> Reply {
    let mut op = match parse(args.iter().map(|a| a.as_bytes().to_vec()).collect()) {
        Ok(Command::Write(op)) => op,
        other => panic!("{other:?}"),
    };
    *op.node_limits_mut().expect("XADD or XTRIM") = NodeLimits { max_bytes: 4096, max_entries };
    apply(&op, db.now, &mut db.store).unwrap()
}

fn len(db: &mut Db, key: &str) -> i64 {
    match db.run(&["XLEN", key]) {
        Reply::Int(n) => n,
        other => panic!("{other:?}"),
    }
}

/// The IDs of an XRANGE-shaped reply.
fn ids(r: &Reply) -> Vec<String> {
    let Reply::Array(items) = r else { panic!("{r:?}") };
    items
        .iter()
        .map(|e| match e {
            Reply::Array(parts) => match &parts[0] {
                Reply::Bulk(b) => String::from_utf8(b.clone()).unwrap(),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        })
        .collect()
}

/// XINFO STREAM's field `name`.
fn info(db: &mut Db, key: &str, name: &str) -> Reply {
    let Reply::Map(fields) = db.run(&["XINFO", "STREAM", key, "FULL"]) else { panic!() };
    fields.into_iter().find(|(k, _)| *k == bulk(name)).map(|(_, v)| v).expect(name)
}

#[test]
fn xadd_makes_ids_from_the_apply_time_and_after_the_last() {
    let mut db = Db::new();
    assert_eq!(db.run(&["XADD", "s", "*", "a", "1"]), bulk(&format!("{T0}-0")));
    assert_eq!(db.run(&["XADD", "s", "*", "a", "2"]), bulk(&format!("{T0}-1")));
    db.now += 5;
    assert_eq!(db.run(&["XADD", "s", "*", "a", "3"]), bulk(&format!("{}-0", T0 + 5)));
    // A clock behind the last ID does not go back.
    db.now -= 100;
    assert_eq!(db.run(&["XADD", "s", "*", "a", "4"]), bulk(&format!("{}-1", T0 + 5)));
    assert_eq!(len(&mut db, "s"), 4);

    db.run(&["DEL", "s"]);
    assert_eq!(db.run(&["XADD", "s", "123-456", "f", "v"]), bulk("123-456"));
    assert_eq!(db.run(&["XADD", "s", "123-*", "f", "v"]), bulk("123-457"));
    assert_eq!(db.run(&["XADD", "s", "789-*", "f", "v"]), bulk("789-0"));
    assert_eq!(db.run(&["XADD", "s", "790", "f", "v"]), bulk("790-0"));
    let smaller = err("ERR The ID specified in XADD is equal or smaller than the target stream top item");
    assert_eq!(db.run(&["XADD", "s", "42-*", "f", "v"]), smaller);
    assert_eq!(db.run(&["XADD", "s", "790-0", "f", "v"]), smaller);
    assert_eq!(db.run(&["XADD", "t", "0-*", "f", "v"]), bulk("0-1"));
    assert_eq!(db.run(&["XADD", "u", "1-18446744073709551615", "f", "v"]), bulk("1-18446744073709551615"));
    assert_eq!(db.run(&["XADD", "u", "1-*", "f", "v"]), smaller);
    db.run(&["XADD", "m", "18446744073709551615-18446744073709551615", "f", "v"]);
    assert_eq!(
        db.run(&["XADD", "m", "*", "f", "v"]),
        err("ERR The stream has exhausted the last possible ID, unable to add more items")
    );
}

#[test]
fn bad_xadds_get_redis_errors_and_change_nothing() {
    let mut db = Db::new();
    let arity = err("ERR wrong number of arguments for 'xadd' command");
    assert_eq!(db.run(&["XADD", "s", "*"]), arity);
    assert_eq!(db.run(&["XADD", "s", "*", "f"]), arity);
    assert_eq!(db.run(&["XADD", "s", "*", "f", "v", "g"]), arity);
    assert_eq!(db.run(&["XADD", "s", "0-0", "f", "v"]), err("ERR The ID specified in XADD must be greater than 0-0"));
    let invalid = err("ERR Invalid stream ID specified as stream command argument");
    assert_eq!(db.run(&["XADD", "s", "1-x", "f", "v"]), invalid);
    assert_eq!(db.run(&["XADD", "s", "-", "f", "v"]), invalid);
    assert_eq!(db.run(&["XADD", "s", "MAXLEN", "-1", "*", "f", "v"]), err("ERR The MAXLEN argument must be >= 0."));
    assert_eq!(
        db.run(&["XADD", "s", "MAXLEN", "1", "MINID", "1", "*", "f", "v"]),
        err("ERR syntax error, MAXLEN and MINID options at the same time are not compatible")
    );
    assert_eq!(
        db.run(&["XADD", "s", "MAXLEN", "1", "LIMIT", "1", "*", "f", "v"]),
        err("ERR syntax error, LIMIT cannot be used without the special ~ option")
    );
    assert_eq!(
        db.run(&["XADD", "s", "LIMIT", "1", "*", "f", "v"]),
        err("ERR syntax error, LIMIT cannot be used without specifying a trimming strategy")
    );
    assert_eq!(db.stored(), 0);
    db.run(&["SET", "str", "x"]);
    assert_eq!(
        db.run(&["XADD", "str", "*", "f", "v"]),
        err("WRONGTYPE Operation against a key holding the wrong kind of value")
    );
    assert_eq!(db.run(&["XADD", "none", "NOMKSTREAM", "*", "f", "v"]), Reply::Nil);
    assert_eq!(db.run(&["EXISTS", "none"]), int(0));
}

#[test]
fn xrange_reads_intervals_and_xrevrange_reads_them_backwards() {
    let mut db = Db::new();
    let all = ["0-1", "0-18446744073709551615", "1-0", "42-0", "42-42", "18446744073709551615-18446744073709551614"];
    for id in all {
        db.run(&["XADD", "v", id, "foo", "bar"]);
    }
    assert_eq!(ids(&db.run(&["XRANGE", "v", "-", "+"])), all);
    assert_eq!(ids(&db.run(&["XRANGE", "v", "(0-1", "+"])).len(), 5);
    assert_eq!(ids(&db.run(&["XRANGE", "v", "(0-1", "(1-0"])), ["0-18446744073709551615"]);
    assert_eq!(ids(&db.run(&["XRANGE", "v", "42", "42"])), ["42-0", "42-42"]);
    assert_eq!(ids(&db.run(&["XRANGE", "v", "-", "+", "COUNT", "2"])), ["0-1", "0-18446744073709551615"]);
    assert_eq!(db.run(&["XRANGE", "v", "-", "+", "COUNT", "0"]), Reply::NilArray);
    assert_eq!(ids(&db.run(&["XREVRANGE", "v", "+", "-", "COUNT", "2"])), [all[5], all[4]]);
    assert_eq!(ids(&db.run(&["XREVRANGE", "v", "42", "1"])), ["42-42", "42-0", "1-0"]);
    assert_eq!(ids(&db.run(&["XRANGE", "v", "5", "3"])), Vec::<String>::new());
    assert_eq!(db.run(&["XRANGE", "v", "(-", "+"]), err("ERR Invalid stream ID specified as stream command argument"));
    assert_eq!(db.run(&["XRANGE", "v", "-", "(+"]), err("ERR Invalid stream ID specified as stream command argument"));
    assert_eq!(
        db.run(&["XRANGE", "v", "(18446744073709551615-18446744073709551615", "+"]),
        err("ERR invalid start ID for the interval")
    );
    assert_eq!(db.run(&["XRANGE", "v", "-", "(0-0"]), err("ERR invalid end ID for the interval"));
    assert_eq!(db.run(&["XRANGE", "v", "-", "+", "LIMIT", "1"]), err("ERR syntax error"));
    assert_eq!(db.run(&["XRANGE", "nothing", "-", "+"]), Reply::Array(vec![]));
    // Fields come back as they were given.
    db.run(&["XADD", "w", "1", "a", "1", "b", "2"]);
    let entry = Reply::Array(vec![bulk("1-0"), Reply::Array(vec![bulk("a"), bulk("1"), bulk("b"), bulk("2")])]);
    assert_eq!(db.run(&["XRANGE", "w", "-", "+"]), Reply::Array(vec![entry]));
}

#[test]
fn approximate_trimming_removes_whole_nodes_as_redis_does() {
    let mut db = Db::new();
    for j in 0..1000 {
        db.run(&["XADD", "s", "MAXLEN", "~", "555", "*", "x", &j.to_string()]);
    }
    assert_eq!(len(&mut db, "s"), 600);

    db.run(&["DEL", "s"]);
    for j in 0..1000 {
        db.run(&["XADD", "s", "*", "x", &j.to_string()]);
    }
    assert_eq!(db.run(&["XTRIM", "s", "MAXLEN", "666"]), int(334));
    assert_eq!(db.run(&["XTRIM", "s", "MAXLEN", "=", "555"]), int(111));
    assert_eq!(db.run(&["XTRIM", "s", "MAXLEN", "~", "444"]), int(55));
    assert_eq!(len(&mut db, "s"), 500);
    db.run(&["XTRIM", "s", "MAXLEN", "~", "400"]);
    assert_eq!(len(&mut db, "s"), 400);

    // LIMIT bounds the entries an approximate trimming removes.
    db.run(&["DEL", "s"]);
    for _ in 0..100 {
        with_nodes(&mut db, 10, &["XADD", "s", "*", "x", "v"]);
    }
    with_nodes(&mut db, 10, &["XADD", "s", "MAXLEN", "~", "55", "LIMIT", "30", "*", "x", "v"]);
    assert_eq!(len(&mut db, "s"), 71);
    with_nodes(&mut db, 10, &["XADD", "s", "MAXLEN", "~", "55", "LIMIT", "30", "*", "x", "v"]);
    assert_eq!(len(&mut db, "s"), 62);

    // Without LIMIT, a hundred nodes at most.
    db.run(&["DEL", "s"]);
    for _ in 0..102 {
        with_nodes(&mut db, 1, &["XADD", "s", "*", "x", "v"]);
    }
    with_nodes(&mut db, 1, &["XTRIM", "s", "MAXLEN", "~", "1"]);
    assert_eq!(len(&mut db, "s"), 2);
    with_nodes(&mut db, 1, &["XTRIM", "s", "MAXLEN", "1"]);
    assert_eq!(len(&mut db, "s"), 1);

    db.run(&["DEL", "s"]);
    for _ in 0..3 {
        with_nodes(&mut db, 2, &["XADD", "s", "*", "x", "v"]);
    }
    assert_eq!(with_nodes(&mut db, 2, &["XTRIM", "s", "MAXLEN", "~", "0", "LIMIT", "1"]), int(0));
    assert_eq!(with_nodes(&mut db, 2, &["XTRIM", "s", "MAXLEN", "~", "0", "LIMIT", "2"]), int(2));
    assert_eq!(info(&mut db, "s", "radix-tree-keys"), int(1));

    // MINID: exact removes below it, approximate only whole nodes below.
    db.run(&["DEL", "m"]);
    for id in 1..=5 {
        db.run(&["XADD", "m", &format!("{id}-0"), "f", "v"]);
    }
    db.run(&["XTRIM", "m", "MINID", "=", "3-0"]);
    assert_eq!(ids(&db.run(&["XRANGE", "m", "-", "+"])), ["3-0", "4-0", "5-0"]);
    db.run(&["XTRIM", "m", "MINID", "~", "5"]);
    assert_eq!(len(&mut db, "m"), 3);
    assert_eq!(
        db.run(&["XTRIM", "m", "MAXLEN", "1", "LIMIT", "30"]),
        err("ERR syntax error, LIMIT cannot be used without the special ~ option")
    );
    assert_eq!(
        db.run(&["XTRIM", "m", "LIMIT", "30"]),
        err("ERR syntax error, LIMIT cannot be used without specifying a trimming strategy")
    );
}

#[test]
fn a_stream_stays_when_emptied_and_keeps_its_ids() {
    let mut db = Db::new();
    db.run(&["XADD", "s", "MAXLEN", "0", "*", "a", "b"]);
    assert_eq!(db.run(&["EXISTS", "s"]), int(1));
    assert_eq!(db.run(&["TYPE", "s"]), Reply::simple("stream"));
    assert_eq!(info(&mut db, "s", "length"), int(0));
    assert_eq!(info(&mut db, "s", "entries-added"), int(1));

    db.run(&["DEL", "x"]);
    for id in 1..=5 {
        db.run(&["XADD", "x", &format!("{id}-0"), "data", "a"]);
    }
    assert_eq!(db.run(&["XDEL", "x", "2-0", "9-9"]), int(1));
    assert_eq!(info(&mut db, "x", "recorded-first-entry-id"), bulk("1-0"));
    assert_eq!(info(&mut db, "x", "max-deleted-entry-id"), bulk("2-0"));
    db.run(&["XDEL", "x", "1-0"]);
    assert_eq!(info(&mut db, "x", "recorded-first-entry-id"), bulk("3-0"));
    assert_eq!(info(&mut db, "x", "max-deleted-entry-id"), bulk("2-0"));
    db.run(&["XTRIM", "x", "MAXLEN", "=", "2"]);
    assert_eq!(info(&mut db, "x", "recorded-first-entry-id"), bulk("4-0"));
    db.run(&["XDEL", "x", "4-0", "5-0"]);
    assert_eq!(len(&mut db, "x"), 0);
    assert_eq!(info(&mut db, "x", "last-generated-id"), bulk("5-0"));
    assert_eq!(info(&mut db, "x", "recorded-first-entry-id"), bulk("0-0"));
    assert_eq!(
        db.run(&["XADD", "x", "5-0", "f", "v"]),
        err("ERR The ID specified in XADD is equal or smaller than the target stream top item")
    );
    assert_eq!(db.run(&["OBJECT", "ENCODING", "x"]), bulk("stream"));
}

#[test]
fn xsetid_moves_the_last_id_forward_only() {
    let mut db = Db::new();
    assert_eq!(db.run(&["XSETID", "s", "1-1"]), err("ERR no such key"));
    assert_eq!(db.run(&["XSETID", "s", "1-1", "0"]), err("ERR syntax error"));
    assert_eq!(db.run(&["XSETID", "s", "1-1", "0-0"]), err("ERR syntax error"));
    assert_eq!(
        db.run(&["XSETID", "s", "1-1", "ENTRIESADDED", "-1", "MAXDELETEDID", "0-0"]),
        err("ERR entries_added must be positive")
    );
    db.run(&["XADD", "s", "MAXLEN", "0", "*", "a", "b"]);
    db.ok(&["XSETID", "s", "200-0"]);
    assert_eq!(info(&mut db, "s", "last-generated-id"), bulk("200-0"));
    db.run(&["XADD", "x", "1-0", "a", "b"]);
    assert_eq!(
        db.run(&["XSETID", "x", "1-0", "ENTRIESADDED", "1", "MAXDELETEDID", "2-0"]),
        err("ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id")
    );
    assert_eq!(
        db.run(&["XSETID", "x", "1-0", "ENTRIESADDED", "0", "MAXDELETEDID", "0-0"]),
        err("ERR The entries_added specified in XSETID is smaller than the target stream length")
    );
    assert_eq!(
        db.run(&["XSETID", "x", "0-5"]),
        err("ERR The ID specified in XSETID is smaller than the target stream top item")
    );
    db.ok(&["XSETID", "x", "7-0", "ENTRIESADDED", "9", "MAXDELETEDID", "3-0"]);
    assert_eq!(info(&mut db, "x", "entries-added"), int(9));
    assert_eq!(info(&mut db, "x", "max-deleted-entry-id"), bulk("3-0"));
    assert_eq!(db.run(&["XADD", "x", "*", "c", "d"]), bulk(&format!("{T0}-0")));
}

#[test]
fn xread_answers_the_streams_with_entries_after_their_ids() {
    let mut db = Db::new();
    db.run(&["XADD", "a", "1", "f", "1"]);
    db.run(&["XADD", "a", "2", "f", "2"]);
    db.run(&["XADD", "b", "5", "g", "5"]);
    let r = db.run2(&["XREAD", "COUNT", "1", "STREAMS", "none", "a", "b", "0", "1", "$"]);
    let entry = |id: &str, f: &str, v: &str| Reply::Array(vec![bulk(id), Reply::Array(vec![bulk(f), bulk(v)])]);
    assert_eq!(r, Reply::Array(vec![Reply::Array(vec![bulk("a"), Reply::Array(vec![entry("2-0", "f", "2")])])]));
    assert_eq!(db.run(&["XREAD", "STREAMS", "a", "b", "2", "5"]), Reply::NilArray);
    // In RESP3 the answer is a map.
    let Reply::Keyed(streams) = db.run(&["XREAD", "STREAMS", "a", "b", "0", "0"]) else { panic!() };
    assert_eq!(streams.len(), 2);
    assert_eq!(
        db.run(&["XREAD", "STREAMS", "a", "b", "0"]),
        err("ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.")
    );
    assert_eq!(
        db.run(&["XREAD", "GROUP", "g", "c", "STREAMS", "a", "0"]),
        err("ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.")
    );
    assert_eq!(
        db.run(&["XREAD", "STREAMS", "a", ">"]),
        err("ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.")
    );
    assert_eq!(db.run(&["XREAD", "BLOCK", "-1", "STREAMS", "a", "0"]), err("ERR timeout is negative"));
    assert_eq!(
        db.run(&["XREAD", "BLOCK", "1.5", "STREAMS", "a", "0"]),
        err("ERR timeout is not an integer or out of range")
    );
    assert_eq!(db.run(&["XREAD", "STREAMS"]), err("ERR wrong number of arguments for 'xread' command"));
    db.run(&["SET", "str", "x"]);
    assert_eq!(
        db.run(&["XREAD", "STREAMS", "a", "str", "0", "0"]),
        err("WRONGTYPE Operation against a key holding the wrong kind of value")
    );
}

#[test]
fn copy_rename_and_del_take_a_stream_whole() {
    let mut db = Db::new();
    for j in 0..250 {
        db.run(&["XADD", "s", "*", "item", &j.to_string()]);
    }
    db.run(&["XDEL", "s", &format!("{T0}-7")]);
    let before = db.run(&["XRANGE", "s", "-", "+"]);
    assert_eq!(db.run(&["COPY", "s", "c"]), int(1));
    assert_eq!(db.run(&["XRANGE", "c", "-", "+"]), before);
    assert_eq!(info(&mut db, "c", "radix-tree-keys"), info(&mut db, "s", "radix-tree-keys"));
    db.ok(&["RENAME", "c", "r"]);
    assert_eq!(db.run(&["XRANGE", "r", "-", "+"]), before);
    let Reply::Array(all) = &before else { panic!() };
    assert_eq!(db.run(&["XREVRANGE", "r", "+", "-", "COUNT", "1"]), Reply::Array(vec![all[all.len() - 1].clone()]));
    assert_eq!(db.run(&["DEL", "s", "r"]), int(2));
    assert_eq!(db.stored(), 0);
}

/// A stream's entries as a plain map, changed alongside it.
struct Model {
    entries: BTreeMap<StreamId, u64>,
}

fn text(id: StreamId) -> String {
    id.text()
}

#[test]
fn random_adds_deletes_and_trims_agree_with_an_ordered_map() {
    for seed in 0..20u64 {
        let mut dice = Dice::new(seed);
        let mut db = Db::new();
        let mut model = Model { entries: BTreeMap::new() };
        let mut next = 1u64;
        let nodes = 1 + dice.below(8);
        for step in 0..400 {
            match dice.below(10) {
                0..=4 => {
                    next += 1 + dice.below(3);
                    let id = StreamId::new(next / 4, next % 4);
                    with_nodes(&mut db, nodes, &["XADD", "s", &text(id), "n", &step.to_string()]);
                    model.entries.insert(id, step);
                }
                5..=6 if !model.entries.is_empty() => {
                    let at = dice.below(model.entries.len() as u64) as usize;
                    let id = *model.entries.keys().nth(at).unwrap();
                    assert_eq!(db.run(&["XDEL", "s", &text(id)]), int(1), "seed {seed}");
                    model.entries.remove(&id);
                }
                7 => {
                    let keep = dice.below(model.entries.len() as u64 + 2);
                    let removed = model.entries.len().saturating_sub(keep as usize);
                    let r = with_nodes(&mut db, nodes, &["XTRIM", "s", "MAXLEN", &keep.to_string()]);
                    if model.entries.is_empty() && r == int(0) {
                        continue;
                    }
                    assert_eq!(r, int(removed as i64), "seed {seed}");
                    while model.entries.len() > keep as usize {
                        model.entries.pop_first();
                    }
                }
                8 => {
                    let min = StreamId::new(dice.below(next / 4 + 2), dice.below(4));
                    with_nodes(&mut db, nodes, &["XTRIM", "s", "MINID", &text(min)]);
                    model.entries.retain(|id, _| *id >= min);
                }
                _ => {
                    let a = StreamId::new(dice.below(next / 4 + 2), dice.below(4));
                    let b = StreamId::new(dice.below(next / 4 + 2), dice.below(4));
                    let (lo, hi) = (a.min(b), a.max(b));
                    let count = dice.below(6);
                    let want: Vec<String> = model.entries.range(lo..=hi).map(|(id, _)| text(*id)).collect();
                    let want_fwd: Vec<String> =
                        if count == 0 { want.clone() } else { want.iter().take(count as usize).cloned().collect() };
                    let want_rev: Vec<String> =
                        want.iter().rev().take(if count == 0 { usize::MAX } else { count as usize }).cloned().collect();
                    let c = count.to_string();
                    let (lo_t, hi_t) = (text(lo), text(hi));
                    let mut fwd = vec!["XRANGE", "s", &lo_t, &hi_t];
                    let mut rev = vec!["XREVRANGE", "s", &hi_t, &lo_t];
                    if count > 0 {
                        fwd.extend(["COUNT", &c]);
                        rev.extend(["COUNT", &c]);
                    }
                    let got = db.run(&fwd);
                    if !(model.entries.is_empty() && got == Reply::Array(vec![])) {
                        assert_eq!(ids(&got), want_fwd, "seed {seed} step {step}");
                    }
                    let got = db.run(&rev);
                    if !(model.entries.is_empty() && got == Reply::Array(vec![])) {
                        assert_eq!(ids(&got), want_rev, "seed {seed} step {step}");
                    }
                }
            }
            if step % 50 == 0 || step == 399 {
                let n = model.entries.len() as i64;
                if db.run(&["EXISTS", "s"]) == int(1) {
                    assert_eq!(len(&mut db, "s"), n, "seed {seed}");
                    let all: Vec<String> = model.entries.keys().map(|id| text(*id)).collect();
                    assert_eq!(ids(&db.run(&["XRANGE", "s", "-", "+"])), all, "seed {seed}");
                    let mut back = all.clone();
                    back.reverse();
                    assert_eq!(ids(&db.run(&["XREVRANGE", "s", "+", "-"])), back, "seed {seed}");
                }
            }
        }
    }
}
