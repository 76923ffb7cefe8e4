//! Pub/sub against a real cluster: subscribers on every node receive what
//! any node publishes, in order, and PUBLISH counts them all; patterns and
//! shard channels; RESP2's subscribed mode and RESP3's pushes beside
//! replies; PUBLISH inside a transaction; a subscriber that leaves stops
//! counting; a node that is down does not stop PUBLISH.

mod common;

use std::time::Duration;

use common::{wait_for, Client, Cluster, Value};

fn arr(items: &[&str]) -> Value {
    Value::Array(items.iter().map(|s| Value::bulk(s)).collect())
}

/// A subscription's confirmation: `[word, name, count]`.
fn confirm(word: &str, name: &str, count: i64) -> Value {
    Value::Array(vec![Value::bulk(word), Value::bulk(name), Value::Int(count)])
}

fn publish(cl: &mut Client, args: &[&str]) -> i64 {
    match cl.cmd(args).unwrap() {
        Value::Int(n) => n,
        other => panic!("{args:?}: {other:?}"),
    }
}

#[test]
fn subscribers_on_every_node_receive_what_any_node_publishes() {
    let mut c = Cluster::start(3, &["--prgs", "2", "--slots", "16"]);
    let mut plain = c.client(0);
    assert_eq!(plain.cmd(&["SUBSCRIBE", "news", "sport"]).unwrap(), confirm("subscribe", "news", 1));
    assert_eq!(plain.read().unwrap(), confirm("subscribe", "sport", 2));
    let mut pattern = c.client(1);
    assert_eq!(pattern.cmd(&["PSUBSCRIBE", "n*"]).unwrap(), confirm("psubscribe", "n*", 1));
    let mut shard = c.client(2);
    assert!(matches!(shard.cmd(&["HELLO", "3"]).unwrap(), Value::Map(_)));
    assert_eq!(
        shard.cmd(&["SSUBSCRIBE", "{t}a", "{t}b"]).unwrap(),
        Value::Push(vec![Value::bulk("ssubscribe"), Value::bulk("{t}a"), Value::Int(1)])
    );
    assert!(matches!(shard.read().unwrap(), Value::Push(_)));

    // Through the node with no subscriber of the channel: both others'.
    let mut publisher = c.client(2);
    assert_eq!(publish(&mut publisher, &["PUBLISH", "news", "hello"]), 2);
    assert_eq!(plain.read().unwrap(), arr(&["message", "news", "hello"]));
    assert_eq!(pattern.read().unwrap(), arr(&["pmessage", "n*", "news", "hello"]));
    assert_eq!(publish(&mut publisher, &["PUBLISH", "nothing-here", "x"]), 1);
    assert_eq!(pattern.read().unwrap(), arr(&["pmessage", "n*", "nothing-here", "x"]));
    // A shard message reaches shard subscribers only, as a push in RESP3.
    assert_eq!(publish(&mut publisher, &["SPUBLISH", "{t}b", "s1"]), 1);
    assert_eq!(
        shard.read().unwrap(),
        Value::Push(vec![Value::bulk("smessage"), Value::bulk("{t}b"), Value::bulk("s1")])
    );
    // RESP3 runs any command while subscribed.
    assert_eq!(shard.cmd(&["SET", "k", "v"]).unwrap(), Value::Simple("OK".into()));

    // Many messages from one client arrive in the order it sent them,
    // pipelined or not.
    let mut burst = Vec::new();
    for i in 0..200 {
        burst.extend(Client::encode(&[b"PUBLISH", b"sport", i.to_string().as_bytes()]));
    }
    c.client(1).send_raw(&burst).unwrap();
    for i in 0..200 {
        assert_eq!(plain.read().unwrap(), arr(&["message", "sport", &i.to_string()]), "message {i}");
    }

    // What the cluster holds, from any node.
    let mut q = c.client(1);
    assert_eq!(
        q.cmd(&["PUBSUB", "NUMSUB", "news", "none"]).unwrap(),
        Value::Array(vec![Value::bulk("news"), Value::Int(1), Value::bulk("none"), Value::Int(0)])
    );
    assert_eq!(q.cmd(&["PUBSUB", "NUMPAT"]).unwrap(), Value::Int(1));
    let mut channels = match q.cmd(&["PUBSUB", "CHANNELS"]).unwrap() {
        Value::Array(v) => v,
        other => panic!("{other:?}"),
    };
    channels.sort_by_key(|v| format!("{v:?}"));
    assert_eq!(channels, vec![Value::bulk("news"), Value::bulk("sport")]);
    assert_eq!(q.cmd(&["PUBSUB", "CHANNELS", "s*"]).unwrap(), arr(&["sport"]));
    assert_eq!(
        q.cmd(&["PUBSUB", "SHARDNUMSUB", "{t}a"]).unwrap(),
        Value::Array(vec![Value::bulk("{t}a"), Value::Int(1)])
    );

    // A subscriber that leaves stops counting once its node notices.
    drop(pattern);
    wait_for(Duration::from_secs(10), "the pattern subscriber to be forgotten", || {
        (q.cmd(&["PUBSUB", "NUMPAT"]).unwrap() == Value::Int(0)).then_some(())
    });
    assert_eq!(publish(&mut publisher, &["PUBLISH", "news", "again"]), 1);
    assert_eq!(plain.read().unwrap(), arr(&["message", "news", "again"]));

    // A node that is down misses its messages; PUBLISH still answers.
    c.kill(2);
    assert_eq!(publish(&mut q, &["PUBLISH", "news", "after"]), 1);
    assert_eq!(plain.read().unwrap(), arr(&["message", "news", "after"]));
}

#[test]
fn subscribed_mode_transactions_and_bad_input_answer_as_redis_does() {
    let c = Cluster::start(3, &["--prgs", "1", "--slots", "16"]);
    let mut sub = c.client(0);
    assert_eq!(
        sub.cmd(&["UNSUBSCRIBE"]).unwrap(),
        Value::Array(vec![Value::bulk("unsubscribe"), Value::Nil, Value::Int(0)])
    );
    assert_eq!(sub.cmd(&["UNSUBSCRIBE", "a", "b"]).unwrap(), confirm("unsubscribe", "a", 0));
    assert_eq!(sub.read().unwrap(), confirm("unsubscribe", "b", 0));
    assert_eq!(sub.cmd(&["SUBSCRIBE", "c", "c"]).unwrap(), confirm("subscribe", "c", 1));
    assert_eq!(sub.read().unwrap(), confirm("subscribe", "c", 1));
    assert_eq!(sub.cmd(&["PSUBSCRIBE", "p*"]).unwrap(), confirm("psubscribe", "p*", 2));

    // RESP2's subscribed mode: only the pub/sub commands, PING, QUIT, RESET.
    assert_eq!(
        sub.cmd(&["GET", "k"]).unwrap(),
        Value::Error(
            "ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in \
             this context"
                .into()
        )
    );
    assert!(matches!(sub.cmd(&["CLIENT", "LIST"]).unwrap(), Value::Error(e) if e.contains("'client|list'")));
    assert_eq!(sub.cmd(&["PING"]).unwrap(), arr(&["pong", ""]));
    assert_eq!(sub.cmd(&["PING", "hi"]).unwrap(), arr(&["pong", "hi"]));
    assert!(matches!(sub.cmd(&["NOSUCH"]).unwrap(), Value::Error(e) if e.starts_with("ERR unknown command")));
    assert_eq!(
        sub.cmd(&["SSUBSCRIBE", "{a}x", "{b}x"]).unwrap(),
        Value::Error("CROSSSLOT Keys in request don't hash to the same slot".into())
    );
    assert_eq!(sub.cmd(&["PUNSUBSCRIBE"]).unwrap(), confirm("punsubscribe", "p*", 1));
    assert_eq!(sub.cmd(&["UNSUBSCRIBE"]).unwrap(), confirm("unsubscribe", "c", 0));
    // Out of subscribed mode, everything again.
    assert_eq!(sub.cmd(&["PING"]).unwrap(), Value::Simple("PONG".into()));
    assert_eq!(sub.cmd(&["GET", "k"]).unwrap(), Value::Nil);
    // RESET ends every subscription.
    sub.cmd(&["SUBSCRIBE", "c"]).unwrap();
    assert_eq!(sub.cmd(&["RESET"]).unwrap(), Value::Simple("RESET".into()));
    let mut other = c.client(1);
    assert_eq!(publish(&mut other, &["PUBLISH", "c", "x"]), 0);
    assert_eq!(sub.cmd(&["GET", "k"]).unwrap(), Value::Nil);

    // PUBLISH inside a transaction is answered at EXEC, in its place; a
    // subscription inside one aborts it.
    let mut listener = c.client(2);
    listener.cmd(&["SUBSCRIBE", "tx"]).unwrap();
    let mut tx = c.client(1);
    assert_eq!(tx.cmd(&["MULTI"]).unwrap(), Value::Simple("OK".into()));
    assert_eq!(tx.cmd(&["SET", "k", "1"]).unwrap(), Value::Simple("QUEUED".into()));
    assert_eq!(tx.cmd(&["PUBLISH", "tx", "k is 1"]).unwrap(), Value::Simple("QUEUED".into()));
    assert_eq!(tx.cmd(&["EXEC"]).unwrap(), Value::Array(vec![Value::Simple("OK".into()), Value::Int(1)]));
    assert_eq!(listener.read().unwrap(), arr(&["message", "tx", "k is 1"]));
    tx.cmd(&["MULTI"]).unwrap();
    assert!(tx.cmd(&["SUBSCRIBE", "x"]).unwrap().is_error());
    assert!(matches!(tx.cmd(&["EXEC"]).unwrap(), Value::Error(e) if e.starts_with("EXECABORT")));

    // Arity and syntax, with Redis's texts.
    assert_eq!(
        tx.cmd(&["PUBLISH", "c"]).unwrap(),
        Value::Error("ERR wrong number of arguments for 'publish' command".into())
    );
    assert_eq!(tx.cmd(&["PUBSUB", "CHANNELS", "a", "b"]).unwrap(), Value::Error("ERR syntax error".into()));
    assert!(matches!(tx.cmd(&["PUBSUB", "HELP"]).unwrap(), Value::Array(lines) if lines.len() > 5));
}

fn pmessage(pattern: &str, channel: &str, message: &str) -> Value {
    arr(&["pmessage", pattern, channel, message])
}

#[test]
fn keyspace_notifications_reach_subscribers_on_every_node() {
    let mut c = Cluster::start(3, &["--prgs", "2", "--slots", "16"]);
    let mut cfg = c.client(0);
    assert_eq!(
        cfg.cmd(&["CONFIG", "SET", "notify-keyspace-events", "KEQ"]).unwrap(),
        Value::Error(
            "ERR CONFIG SET failed (possibly related to argument 'notify-keyspace-events') - Invalid event class \
             character. Use 'Ag$lshzxeKEtmd'."
                .into()
        )
    );
    assert_eq!(cfg.cmd(&["CONFIG", "SET", "notify-keyspace-events", "KEA"]).unwrap(), Value::Simple("OK".into()));
    // Set through one node, in force on all.
    for i in 0..3 {
        assert_eq!(
            c.client(i).cmd(&["CONFIG", "GET", "notify-keyspace-events"]).unwrap(),
            arr(&["notify-keyspace-events", "AKE"]),
            "node {i}"
        );
    }
    let mut space = c.client(2);
    assert_eq!(space.cmd(&["PSUBSCRIBE", "__keyspace@0__:*"]).unwrap(), confirm("psubscribe", "__keyspace@0__:*", 1));
    let mut event = c.client(0);
    assert_eq!(event.cmd(&["SUBSCRIBE", "__keyevent@0__:del"]).unwrap(), confirm("subscribe", "__keyevent@0__:del", 1));

    // Writes through the third node, whichever leads their PRG: each
    // write's events, in the order the writes applied.
    let mut w = c.client(1);
    w.cmd(&["SET", "{k}s", "v"]).unwrap();
    w.cmd(&["SADD", "{k}s2", "a"]).unwrap();
    w.cmd(&["SADD", "{k}s2", "a"]).unwrap();
    w.cmd(&["DEL", "{k}s", "{k}s2"]).unwrap();
    let ks = "__keyspace@0__:*";
    assert_eq!(space.read().unwrap(), pmessage(ks, "__keyspace@0__:{k}s", "set"));
    assert_eq!(space.read().unwrap(), pmessage(ks, "__keyspace@0__:{k}s2", "sadd"));
    assert_eq!(space.read().unwrap(), pmessage(ks, "__keyspace@0__:{k}s", "del"), "an SADD that changed nothing");
    assert_eq!(space.read().unwrap(), pmessage(ks, "__keyspace@0__:{k}s2", "del"));
    assert_eq!(event.read().unwrap(), arr(&["message", "__keyevent@0__:del", "{k}s"]));
    assert_eq!(event.read().unwrap(), arr(&["message", "__keyevent@0__:del", "{k}s2"]));

    // A key whose TTL passes is deleted by its leader: `expired`.
    w.cmd(&["SET", "{k}t", "v", "PX", "50"]).unwrap();
    assert_eq!(space.read().unwrap(), pmessage(ks, "__keyspace@0__:{k}t", "set"));
    assert_eq!(space.read().unwrap(), pmessage(ks, "__keyspace@0__:{k}t", "expire"));
    assert_eq!(space.read().unwrap(), pmessage(ks, "__keyspace@0__:{k}t", "expired"));

    // A node that restarts takes the flags from a peer.
    drop(space);
    c.kill(2);
    c.spawn(2);
    c.wait_ready(2, Duration::from_secs(60));
    wait_for(Duration::from_secs(40), "the restarted node to take the flags", || {
        let shown = c.client(2).cmd(&["CONFIG", "GET", "notify-keyspace-events"]).ok()?;
        (shown == arr(&["notify-keyspace-events", "AKE"])).then_some(())
    });

    // Off again: nothing more is published.
    cfg.cmd(&["CONFIG", "SET", "notify-keyspace-events", ""]).unwrap();
    w.cmd(&["DEL", "{k}s"]).unwrap();
    w.cmd(&["SET", "{k}s", "v"]).unwrap();
    w.cmd(&["DEL", "{k}s"]).unwrap();
    assert_eq!(publish(&mut w, &["PUBLISH", "__keyevent@0__:del", "marker"]), 1);
    assert_eq!(event.read().unwrap(), arr(&["message", "__keyevent@0__:del", "marker"]), "no del event came first");
}

#[test]
fn client_reply_silences_replies_but_not_messages() {
    let c = Cluster::start(3, &["--prgs", "1", "--slots", "16"]);
    let mut cl = c.client(0);
    // SKIP: no answer to it or to the next command; the one after answers.
    let mut batch = Vec::new();
    for args in [&["CLIENT", "REPLY", "SKIP"][..], &["SET", "a", "1"], &["GET", "a"]] {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        batch.extend(Client::encode(&a));
    }
    cl.send_raw(&batch).unwrap();
    assert_eq!(cl.read().unwrap(), Value::bulk("1"));
    // A silenced reply longer than the connection's reply buffer (1 MiB)
    // is not sent either (KEYS answers at once, not batched as GETs are).
    for chunk in 0..12 {
        let keys: Vec<String> = (0..1000).map(|i| format!("{:0>100}", chunk * 1000 + i)).collect();
        let mut args: Vec<&[u8]> = vec![b"MSET"];
        for k in &keys {
            args.push(k.as_bytes());
            args.push(b"v");
        }
        assert_eq!(cl.cmd_bytes(&args).unwrap(), Value::Simple("OK".into()));
    }
    let mut batch = Vec::new();
    for args in [&["CLIENT", "REPLY", "SKIP"][..], &["KEYS", "*"], &["PING"]] {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        batch.extend(Client::encode(&a));
    }
    cl.send_raw(&batch).unwrap();
    assert_eq!(cl.read().unwrap(), Value::Simple("PONG".into()));
    // OFF: nothing until ON; subscriptions and messages still come.
    let mut batch = Vec::new();
    for args in [&["CLIENT", "REPLY", "OFF"][..], &["SET", "a", "2"], &["NOSUCH"], &["SUBSCRIBE", "c"]] {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        batch.extend(Client::encode(&a));
    }
    cl.send_raw(&batch).unwrap();
    assert_eq!(cl.read().unwrap(), confirm("subscribe", "c", 1));
    assert_eq!(publish(&mut c.client(0), &["PUBLISH", "c", "m"]), 1);
    assert_eq!(cl.read().unwrap(), arr(&["message", "c", "m"]));
    assert_eq!(cl.cmd(&["UNSUBSCRIBE"]).unwrap(), confirm("unsubscribe", "c", 0));
    assert_eq!(cl.cmd(&["CLIENT", "REPLY", "ON"]).unwrap(), Value::Simple("OK".into()));
    assert_eq!(cl.cmd(&["GET", "a"]).unwrap(), Value::bulk("2"));
}
