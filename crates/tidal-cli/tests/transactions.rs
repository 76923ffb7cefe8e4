//! MULTI / EXEC / DISCARD / WATCH against a real 3-node cluster: a
//! transaction is one entry in its PRG's log, of one slot, all or nothing.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{json_of, Cluster, Value};

fn simple(s: &str) -> Value {
    Value::Simple(s.into())
}

fn err_starts(v: &Value, prefix: &str) -> bool {
    matches!(v, Value::Error(e) if e.starts_with(prefix))
}

/// Queueing, replies in order with reads that see the writes before them,
/// and Redis's errors for misuse; a transaction refused while queueing
/// applies nothing.
#[test]
fn a_transaction_runs_in_order_and_misuse_gets_redis_errors() {
    let c = Cluster::start(3, &[]);
    let mut cl = c.client(0);
    assert_eq!(cl.cmd(&["MULTI"]).unwrap(), Value::Simple("OK".into()));
    for args in
        [&["SET", "{u}a", "1"][..], &["INCRBY", "{u}a", "41"], &["GET", "{u}a"], &["PING"], &["MGET", "{u}a", "{u}b"]]
    {
        assert_eq!(cl.cmd(args).unwrap(), simple("QUEUED"), "{args:?}");
    }
    assert_eq!(
        cl.cmd(&["EXEC"]).unwrap(),
        Value::Array(vec![
            simple("OK"),
            Value::Int(42),
            Value::bulk("42"),
            simple("PONG"),
            Value::Array(vec![Value::bulk("42"), Value::Nil]),
        ])
    );

    // Keys of two slots: CROSSSLOT at the command, EXECABORT at EXEC, and
    // nothing applied (not even the command queued before it).
    cl.cmd(&["MULTI"]).unwrap();
    assert_eq!(cl.cmd(&["SET", "{u}c", "1"]).unwrap(), simple("QUEUED"));
    let refused = cl.cmd(&["SET", "{other}d", "1"]).unwrap();
    assert!(err_starts(&refused, "CROSSSLOT"), "{refused:?}");
    assert!(err_starts(&cl.cmd(&["EXEC"]).unwrap(), "EXECABORT"));
    assert_eq!(cl.cmd(&["EXISTS", "{u}c"]).unwrap(), Value::Int(0));

    // A syntax error while queueing aborts too.
    cl.cmd(&["MULTI"]).unwrap();
    cl.cmd(&["SET", "{u}c", "1"]).unwrap();
    assert!(err_starts(&cl.cmd(&["SET", "{u}c"]).unwrap(), "ERR wrong number of arguments"));
    assert!(err_starts(&cl.cmd(&["EXEC"]).unwrap(), "EXECABORT"));
    assert_eq!(cl.cmd(&["EXISTS", "{u}c"]).unwrap(), Value::Int(0));

    // SAVE and SHUTDOWN are refused inside one, as in Redis; outside, SAVE
    // has nothing to do and SHUTDOWN points at drain.
    for cmd in ["SAVE", "SHUTDOWN"] {
        cl.cmd(&["MULTI"]).unwrap();
        cl.cmd(&["SET", "{u}c", "1"]).unwrap();
        assert_eq!(cl.cmd(&[cmd]).unwrap(), Value::Error("ERR Command not allowed inside a transaction".into()));
        assert!(err_starts(&cl.cmd(&["EXEC"]).unwrap(), "EXECABORT"));
        assert_eq!(cl.cmd(&["EXISTS", "{u}c"]).unwrap(), Value::Int(0));
    }
    assert_eq!(cl.cmd(&["SAVE"]).unwrap(), simple("OK"));
    assert!(err_starts(&cl.cmd(&["SHUTDOWN", "NOSAVE"]).unwrap(), "ERR SHUTDOWN is not supported"));

    // A command that spans every slot cannot be part of one.
    cl.cmd(&["MULTI"]).unwrap();
    assert!(err_starts(&cl.cmd(&["DBSIZE"]).unwrap(), "ERR"));
    assert!(err_starts(&cl.cmd(&["EXEC"]).unwrap(), "EXECABORT"));

    // An error at run time is that command's reply; the rest still runs.
    cl.cmd(&["MULTI"]).unwrap();
    cl.cmd(&["SET", "{u}s", "text"]).unwrap();
    cl.cmd(&["INCR", "{u}s"]).unwrap();
    cl.cmd(&["SET", "{u}t", "after"]).unwrap();
    let Value::Array(r) = cl.cmd(&["EXEC"]).unwrap() else { panic!("EXEC is an array") };
    assert_eq!(r[0], simple("OK"));
    assert!(err_starts(&r[1], "ERR value is not an integer"), "{r:?}");
    assert_eq!(cl.cmd(&["GET", "{u}t"]).unwrap(), Value::bulk("after"));

    assert_eq!(cl.cmd(&["EXEC"]).unwrap(), Value::Error("ERR EXEC without MULTI".into()));
    assert_eq!(cl.cmd(&["DISCARD"]).unwrap(), Value::Error("ERR DISCARD without MULTI".into()));
    cl.cmd(&["MULTI"]).unwrap();
    assert_eq!(cl.cmd(&["MULTI"]).unwrap(), Value::Error("ERR MULTI calls can not be nested".into()));
    assert_eq!(cl.cmd(&["WATCH", "{u}a"]).unwrap(), Value::Error("ERR WATCH inside MULTI is not allowed".into()));
    cl.cmd(&["SET", "{u}a", "discarded"]).unwrap();
    assert_eq!(cl.cmd(&["DISCARD"]).unwrap(), simple("OK"));
    assert_eq!(cl.cmd(&["GET", "{u}a"]).unwrap(), Value::bulk("42"));
    assert!(err_starts(&cl.cmd(&["WATCH", "{u}a", "{other}b"]).unwrap(), "CROSSSLOT"));
}

/// A watched key changed by another client (through another node) makes
/// EXEC answer nil and run nothing; unchanged, EXEC runs.
#[test]
fn watch_aborts_exec_when_another_client_wrote_the_key() {
    let c = Cluster::start(3, &[]);
    let (mut a, mut b) = (c.client(0), c.client(1));
    a.cmd(&["SET", "w", "1"]).unwrap();
    assert_eq!(a.cmd(&["WATCH", "w"]).unwrap(), simple("OK"));
    b.cmd(&["SET", "w", "2"]).unwrap();
    a.cmd(&["MULTI"]).unwrap();
    a.cmd(&["SET", "w", "from a"]).unwrap();
    assert_eq!(a.cmd(&["EXEC"]).unwrap(), Value::Nil);
    assert_eq!(a.cmd(&["GET", "w"]).unwrap(), Value::bulk("2"));

    // EXEC ends the watch: the next transaction runs.
    a.cmd(&["MULTI"]).unwrap();
    a.cmd(&["SET", "w", "from a"]).unwrap();
    assert_eq!(a.cmd(&["EXEC"]).unwrap(), Value::Array(vec![simple("OK")]));

    // A key that does not exist yet, then is created by another client.
    a.cmd(&["WATCH", "fresh"]).unwrap();
    b.cmd(&["SET", "fresh", "x"]).unwrap();
    a.cmd(&["MULTI"]).unwrap();
    a.cmd(&["GET", "fresh"]).unwrap();
    assert_eq!(a.cmd(&["EXEC"]).unwrap(), Value::Nil);

    // Written by the same value again still counts as a change.
    a.cmd(&["WATCH", "w"]).unwrap();
    b.cmd(&["SET", "w", "from a"]).unwrap();
    a.cmd(&["MULTI"]).unwrap();
    a.cmd(&["PING"]).unwrap();
    assert_eq!(a.cmd(&["EXEC"]).unwrap(), Value::Nil);

    // UNWATCH forgets; an expired watched key counts as changed.
    a.cmd(&["WATCH", "w"]).unwrap();
    b.cmd(&["SET", "w", "3"]).unwrap();
    a.cmd(&["UNWATCH"]).unwrap();
    a.cmd(&["MULTI"]).unwrap();
    a.cmd(&["GET", "w"]).unwrap();
    assert_eq!(a.cmd(&["EXEC"]).unwrap(), Value::Array(vec![Value::bulk("3")]));
    a.cmd(&["SET", "e", "1", "PX", "300"]).unwrap();
    a.cmd(&["WATCH", "e"]).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    a.cmd(&["MULTI"]).unwrap();
    a.cmd(&["SET", "e", "2"]).unwrap();
    assert_eq!(a.cmd(&["EXEC"]).unwrap(), Value::Nil);
}

/// Optimistic increments from clients on every node, each a WATCH / GET /
/// MULTI / SET / EXEC loop retried on nil: every increment lands exactly
/// once, so the counter ends at the number of increments.
#[test]
fn watched_increments_from_every_node_are_each_applied_once() {
    let c = Cluster::start(3, &[]);
    c.client(0).cmd(&["SET", "counter", "0"]).unwrap();
    let (clients, each) = (6, 20);
    let handles: Vec<_> = (0..clients)
        .map(|i| {
            let mut cl = c.client(i % 3);
            std::thread::spawn(move || {
                let mut retries = 0;
                for _ in 0..each {
                    loop {
                        cl.cmd(&["WATCH", "counter"]).unwrap();
                        let Value::Bulk(v) = cl.cmd(&["GET", "counter"]).unwrap() else { panic!("counter") };
                        let n: i64 = String::from_utf8(v).unwrap().parse().unwrap();
                        cl.cmd(&["MULTI"]).unwrap();
                        cl.cmd(&["SET", "counter", &(n + 1).to_string()]).unwrap();
                        match cl.cmd(&["EXEC"]).unwrap() {
                            Value::Array(_) => break,
                            Value::Nil => retries += 1,
                            other => panic!("EXEC answered {other:?}"),
                        }
                    }
                }
                retries
            })
        })
        .collect();
    let retries: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(c.client(2).cmd(&["GET", "counter"]).unwrap(), Value::bulk(&(clients * each).to_string()));
    // The clients raced: some EXECs must have seen a changed key.
    assert!(retries > 0, "no EXEC ever returned nil");
}

/// A slot that moves between WATCH and EXEC fails the EXEC (the versions
/// were read from the PRG that no longer serves it); a transaction queued
/// and run after the move runs on the new owner.
#[test]
fn a_transaction_follows_its_slot_to_another_prg() {
    let c = Cluster::start(3, &["--prgs", "1", "--slots", "16"]);
    let mut cl = c.client(0);
    cl.cmd(&["SET", "m", "1"]).unwrap();
    cl.cmd(&["WATCH", "m"]).unwrap();
    json_of(&c.tidal(&["prgs", "add", "--count", "1"]));
    let moved = json_of(&c.tidal(&["move", "slots", "--slots", "0-15", "--to", "default:1", "--wait"]));
    assert_eq!(moved["state"], "done", "{moved}");
    cl.cmd(&["MULTI"]).unwrap();
    cl.cmd(&["INCR", "m"]).unwrap();
    assert_eq!(cl.cmd(&["EXEC"]).unwrap(), Value::Nil);
    cl.cmd(&["WATCH", "m"]).unwrap();
    cl.cmd(&["MULTI"]).unwrap();
    cl.cmd(&["INCR", "m"]).unwrap();
    cl.cmd(&["GET", "m"]).unwrap();
    assert_eq!(cl.cmd(&["EXEC"]).unwrap(), Value::Array(vec![Value::Int(2), Value::bulk("2")]));
}

/// redis-py's default pipeline is a MULTI/EXEC transaction, and its
/// WATCH helper raises WatchError on a conflict.
#[test]
fn redis_py_pipelines_and_watch_work_unchanged() {
    let c = Cluster::start(3, &[]);
    let (one, two) = (&c.nodes[0].redis, &c.nodes[1].redis);
    let script = format!(
        "import redis\n\
         host, port = '{one}'.split(':')\n\
         r = redis.Redis(host=host, port=int(port))\n\
         p = r.pipeline()\n\
         p.set('{{cart}}items', 3).incr('{{cart}}items').get('{{cart}}items')\n\
         print(p.execute())\n\
         host2, port2 = '{two}'.split(':')\n\
         other = redis.Redis(host=host2, port=int(port2))\n\
         with r.pipeline() as p:\n    \
             p.watch('{{cart}}items')\n    \
             n = int(p.get('{{cart}}items'))\n    \
             other.set('{{cart}}items', 100)\n    \
             p.multi()\n    \
             p.set('{{cart}}items', n + 1)\n    \
             try:\n        p.execute()\n        print('no conflict')\n    \
             except redis.WatchError:\n        print('WatchError')\n\
         def bump(pipe):\n    \
             n = int(pipe.get('{{cart}}items'))\n    \
             pipe.multi()\n    \
             pipe.set('{{cart}}items', n + 1)\n\
         r.transaction(bump, '{{cart}}items')\n\
         print(r.get('{{cart}}items'))\n"
    );
    let out = Command::new("python3").args(["-c", &script]).output().expect("python3 with redis-py");
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{printed}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(printed.lines().collect::<Vec<_>>(), ["[True, 4, b'4']", "WatchError", "b'101'"], "{printed}");
}

/// `tidal bench --tx N`: every update a MULTI/EXEC of N SETs to keys of one
/// slot. None fails, and the keys come in whole transactions: each drawn
/// key's N keys all exist.
#[test]
fn bench_transactions_write_whole_groups_of_keys() {
    let c = Cluster::start(3, &[]);
    let targets: Vec<&str> = c.nodes.iter().map(|n| n.redis.as_str()).collect();
    let out = Command::new(common::BIN)
        .args(["bench", "--target", &format!("resp://{}", targets.join(","))])
        .args([
            "--workload",
            "write",
            "--tx",
            "5",
            "--clients",
            "4",
            "--keys",
            "300",
            "--duration",
            "2s",
            "--json",
            "-",
        ])
        .env("TIDAL_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let phase = &s["phases"][0];
    assert!(phase["ops"].as_u64().unwrap() > 0, "{phase}");
    assert_eq!(phase["errors"], 0, "{phase}");
    let mut cl = c.client(0);
    let Value::Int(n) = cl.cmd(&["DBSIZE"]).unwrap() else { panic!("DBSIZE") };
    assert!(n > 0 && n % 5 == 0, "{n} keys are not whole groups of 5");
    let Value::Array(page) = cl.cmd(&["SCAN", "0", "MATCH", "*}:0", "COUNT", "1000"]).unwrap() else { panic!() };
    let Value::Array(firsts) = &page[1] else { panic!("{page:?}") };
    assert!(!firsts.is_empty(), "no first key of a group in {page:?}");
    for k in firsts.iter().take(20) {
        let Value::Bulk(k) = k else { panic!() };
        let tag = String::from_utf8_lossy(&k[..k.len() - 2]).into_owned();
        for i in 1..5 {
            assert_eq!(cl.cmd(&["EXISTS", &format!("{tag}:{i}")]).unwrap(), Value::Int(1), "{tag}:{i}");
        }
    }
}

/// go-redis, as an application uses it: `TxPipelined`, a transaction
/// refused whole, `Watch` with a conflict and without, `Pipelined` over the
/// collection commands, replies in go-redis's types, and a BLPOP answered
/// by a push through another node. go-redis v5 is Debian's
/// `golang-gopkg-redis.v5-dev`, built in GOPATH mode (no module proxy).
/// Skipped, saying so, where Go or the package is missing.
#[test]
fn go_redis_tx_pipelined_watch_and_blocking_pops_work_unchanged() {
    const GOPATH: &str = "/usr/share/gocode";
    let go_ok = Command::new("go").arg("version").output().is_ok_and(|o| o.status.success());
    if !go_ok || !std::path::Path::new(GOPATH).join("src/gopkg.in/redis.v5").is_dir() {
        eprintln!("skipped: go-redis is not installed (apt-get install golang-go golang-gopkg-redis.v5-dev)");
        return;
    }
    let program = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go/goredis.go");
    let cache = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("go-build");
    let c = Cluster::start(3, &[]);
    let out = Command::new("go")
        .arg("run")
        .arg(&program)
        .args([&c.nodes[0].redis, &c.nodes[1].redis])
        .env("GO111MODULE", "off")
        .env("GOPATH", GOPATH)
        .env("GOCACHE", &cache)
        .env("GOFLAGS", "")
        .output()
        .expect("go run");
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{printed}{}", String::from_utf8_lossy(&out.stderr));
    let got: Vec<serde_json::Value> =
        printed.lines().map(|line| serde_json::from_str(line).expect("one JSON object per line")).collect();
    let expected = serde_json::json!([
        {"step": "tx-pipelined", "value": ["OK", 4, 4.5, "4.5"]},
        {"step": "execabort", "value": "EXECABORT"},
        {"step": "after-abort", "value": "4.5"},
        {"step": "watch-conflict", "value": "TxFailedErr"},
        {"step": "after-conflict", "value": "100"},
        {"step": "watch-applied", "value": "200"},
        {"step": "pipelined", "value": ["OK", 11, {"a": "11", "b": "2"}, 3, "x", ["y", "z"], 2, true, 3, 2.5]},
        {"step": "zrange-withscores", "value": [["b", 2], ["a", 2.5], ["c", 3]]},
        {"step": "smembers", "value": ["p", "q"]},
        {"step": "wrongtype", "value": "WRONGTYPE Operation against a key holding the wrong kind of value"},
        {"step": "blpop", "value": ["jobs", "job-1"]},
        {"step": "blpop-timeout", "value": "redis: nil"},
    ]);
    assert_eq!(serde_json::Value::Array(got), expected, "{printed}");
}

/// ioredis (Node.js), as an application uses it: `multi()` with a
/// transaction refused whole and a WATCH conflict, `pipeline()`, replies
/// of the collection commands in its shapes, and a BLPOP answered by a
/// push through another node. Skipped, saying so, where Node.js or the
/// package (`npm ci --prefix crates/tidal-cli/tests/node`) is missing.
#[test]
fn ioredis_multi_pipeline_and_blocking_pops_work_unchanged() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node");
    let node_ok = Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    if !node_ok || !dir.join("node_modules/ioredis").is_dir() {
        eprintln!("skipped: ioredis is not installed (npm ci --prefix crates/tidal-cli/tests/node)");
        return;
    }
    let c = Cluster::start(3, &[]);
    let out = Command::new("node")
        .arg(dir.join("ioredis.js"))
        .args([&c.nodes[0].redis, &c.nodes[1].redis])
        .output()
        .expect("node");
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{printed}{}", String::from_utf8_lossy(&out.stderr));
    let steps: Vec<(String, serde_json::Value)> = printed
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("one JSON object per line");
            (v["step"].as_str().expect("step").to_owned(), v["value"].clone())
        })
        .collect();
    let expected = serde_json::json!([
        ["multi", [[null, "OK"], [null, 4], [null, "4"]]],
        ["execabort", "EXECABORT"],
        ["after-abort", "4"],
        ["watch-conflict", null],
        ["after-conflict", "100"],
        ["pipeline", [[null, 2], [null, {"a": "1", "b": "2"}], [null, 2], [null, ["x", "y"]]]],
        ["zrange", ["a", "1", "b", "2", "c", "3"]],
        ["hgetall", {"a": "1", "b": "2"}],
        ["smembers", ["p", "q"]],
        ["blpop", ["jobs", "job-1"]],
        ["blpop-timeout", null],
    ]);
    let got =
        serde_json::Value::Array(steps.into_iter().map(|(step, value)| serde_json::json!([step, value])).collect());
    assert_eq!(got, expected, "{printed}");
}
