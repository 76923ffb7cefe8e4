//! A real 3-node cluster serving Redis and HTTP clients: commands across
//! PRGs, pipelining, RESP3, bad input, and the admin API.

mod common;

use std::time::Duration;

use common::{http, http_get, Client, Cluster, Value};

fn ok() -> Value {
    Value::Simple("OK".into())
}

fn bulk(s: &str) -> Value {
    Value::bulk(s)
}

#[test]
fn a_three_node_cluster_serves_redis_http_and_admin_clients() {
    let c = Cluster::start(3, &["--max-value-bytes", "4096"]);
    let mut a = c.client(0);
    let mut b = c.client(1);

    // Writes on one node are read on another.
    assert_eq!(a.cmd(&["SET", "hello", "world"]).unwrap(), ok());
    assert_eq!(b.cmd(&["GET", "hello"]).unwrap(), bulk("world"));
    assert_eq!(b.cmd(&["GET", "missing"]).unwrap(), Value::Nil);

    // Multi-key commands spanning PRGs.
    let keys: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
    let mut mset = vec!["MSET".to_string()];
    for k in &keys {
        mset.push(k.clone());
        mset.push(format!("v-{k}"));
    }
    let mset: Vec<&str> = mset.iter().map(String::as_str).collect();
    assert_eq!(a.cmd(&mset).unwrap(), ok());
    let mut mget = vec!["MGET"];
    mget.extend(keys.iter().map(String::as_str));
    mget.push("nope");
    let Value::Array(vals) = b.cmd(&mget).unwrap() else { panic!("MGET must answer an array") };
    assert_eq!(vals.len(), 41);
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(vals[i], bulk(&format!("v-{k}")));
    }
    assert_eq!(vals[40], Value::Nil);
    let mut exists = vec!["EXISTS"];
    exists.extend(keys.iter().map(String::as_str));
    assert_eq!(a.cmd(&exists).unwrap(), Value::Int(40));
    assert_eq!(a.cmd(&["DBSIZE"]).unwrap(), Value::Int(41));
    let Value::Array(all) = a.cmd(&["KEYS", "k*"]).unwrap() else { panic!() };
    assert_eq!(all.len(), 40);

    // SCAN walks every slot exactly once.
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor = "0".to_string();
    loop {
        let Value::Array(r) = b.cmd(&["SCAN", &cursor, "COUNT", "7"]).unwrap() else { panic!() };
        let Value::Bulk(next) = &r[0] else { panic!() };
        let Value::Array(ks) = &r[1] else { panic!() };
        for k in ks {
            let Value::Bulk(k) = k else { panic!() };
            assert!(seen.insert(k.clone()), "SCAN returned a key twice");
        }
        cursor = String::from_utf8(next.clone()).unwrap();
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen.len(), 41);

    // Counters, TTLs and the string family.
    assert_eq!(a.cmd(&["INCR", "ctr"]).unwrap(), Value::Int(1));
    assert_eq!(b.cmd(&["INCRBY", "ctr", "41"]).unwrap(), Value::Int(42));
    assert_eq!(a.cmd(&["DECR", "ctr"]).unwrap(), Value::Int(41));
    assert_eq!(a.cmd(&["SET", "t", "v", "EX", "100"]).unwrap(), ok());
    let Value::Int(ttl) = b.cmd(&["TTL", "t"]).unwrap() else { panic!() };
    assert!((99..=100).contains(&ttl), "ttl {ttl}");
    assert_eq!(a.cmd(&["APPEND", "s", "abc"]).unwrap(), Value::Int(3));
    assert_eq!(a.cmd(&["GETRANGE", "s", "-2", "-1"]).unwrap(), bulk("bc"));
    assert_eq!(a.cmd(&["RENAME", "s", "s2"]).unwrap(), ok());
    assert_eq!(b.cmd(&["GET", "s2"]).unwrap(), bulk("abc"));
    assert_eq!(b.cmd(&["GET", "s"]).unwrap(), Value::Nil);
    assert_eq!(a.cmd(&["DEL", "k1", "k2", "nope"]).unwrap(), Value::Int(2));

    // Pipelining: many commands in one write, replies in order.
    let mut pipe = Vec::new();
    for i in 0..100 {
        pipe.extend(Client::encode(&[b"SET", format!("p{i}").as_bytes(), format!("{i}").as_bytes()]));
        pipe.extend(Client::encode(&[b"GET", format!("p{i}").as_bytes()]));
    }
    a.send_raw(&pipe).unwrap();
    for i in 0..100 {
        assert_eq!(a.read().unwrap(), ok());
        assert_eq!(a.read().unwrap(), bulk(&i.to_string()));
    }

    // Pipelined writes across PRGs, sent through every node (so some run
    // on remote leaders): each command sees the effects of those before it
    // on the connection, including around multi-PRG commands.
    for node in 0..3 {
        let mut cl = c.client(node);
        let keys: Vec<String> = (0..12).map(|i| format!("n{node}-q{i}")).collect();
        let mut pipe = Vec::new();
        let mut want = Vec::new();
        let mut send = |args: &[&str], reply: Value| {
            let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
            pipe.extend(Client::encode(&args));
            want.push(reply);
        };
        for k in &keys {
            send(&["SET", k, "10"], ok());
        }
        for round in 1..=3 {
            for k in &keys {
                send(&["INCR", k], Value::Int(10 + round));
            }
        }
        for k in &keys {
            send(&["GET", k], bulk("13"));
        }
        let mut mset = vec!["MSET"];
        for k in &keys {
            mset.extend([k.as_str(), "x"]);
        }
        send(&mset, ok());
        for k in &keys {
            send(&["APPEND", k, "y"], Value::Int(2));
        }
        let mut del = vec!["DEL"];
        del.extend(keys.iter().map(String::as_str).take(6));
        send(&del, Value::Int(6));
        for (i, k) in keys.iter().enumerate() {
            send(
                &["INCR", k],
                if i < 6 { Value::Int(1) } else { Value::Error("ERR value is not an integer or out of range".into()) },
            );
        }
        let mut exists = vec!["EXISTS"];
        exists.extend(keys.iter().map(String::as_str));
        send(&exists, Value::Int(12));
        cl.send_raw(&pipe).unwrap();
        for (i, w) in want.iter().enumerate() {
            assert_eq!(&cl.read().unwrap(), w, "reply {i} of the pipeline through node {node}");
        }
    }

    // RESP3 via HELLO.
    let Value::Map(hello) = b.cmd(&["HELLO", "3"]).unwrap() else { panic!("HELLO 3 answers a map") };
    assert!(hello.contains(&(bulk("proto"), Value::Int(3))));
    assert_eq!(b.cmd(&["GET", "missing"]).unwrap(), Value::Nil);

    // Bad input: clear errors, nothing written.
    assert_eq!(
        a.cmd(&["NOSUCH", "x"]).unwrap(),
        Value::Error("ERR unknown command 'NOSUCH', with args beginning with: 'x' ".into())
    );
    assert_eq!(a.cmd(&["GET"]).unwrap(), Value::Error("ERR wrong number of arguments for 'get' command".into()));
    assert_eq!(a.cmd(&["SET", "str", "abc"]).unwrap(), ok());
    assert_eq!(a.cmd(&["INCR", "str"]).unwrap(), Value::Error("ERR value is not an integer or out of range".into()));
    let big = "x".repeat(5000);
    assert!(a.cmd(&["SET", "big", &big]).unwrap().is_error());
    assert_eq!(a.cmd(&["GET", "big"]).unwrap(), Value::Nil);

    // HTTP data API.
    let h = &c.nodes[2].http;
    assert_eq!(http(h, "PUT", "/v1/kv/default/web", b"value").unwrap().0, 204);
    assert_eq!(b.cmd(&["GET", "web"]).unwrap(), bulk("value"));
    assert_eq!(http_get(h, "/v1/kv/default/web").unwrap(), (200, "value".into()));
    assert_eq!(http_get(h, "/v1/kv/default/nokey").unwrap().0, 404);
    let (code, body) = http_get(h, "/v1/kv/notenant/web").unwrap();
    assert_eq!(code, 404);
    assert!(body.contains("unknown tenant"), "{body}");
    assert_eq!(http(h, "DELETE", "/v1/kv/default/web", b"").unwrap().0, 204);
    assert_eq!(http(h, "DELETE", "/v1/kv/default/web", b"").unwrap().0, 404);
    assert_eq!(http(h, "PUT", "/v1/kv/default/big", big.as_bytes()).unwrap().0, 413);

    // Admin API.
    let (code, health) = http_get(h, "/health").unwrap();
    assert_eq!(code, 200);
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["nodeCount"], 3);
    assert_eq!(health["quorum"], true);
    let (_, metrics) = http_get(h, "/metrics").unwrap();
    assert!(metrics.contains("tidal_prg_applied_index{prg=\"default:0\"}"), "{metrics}");
    assert!(metrics.contains("tidal_routing_epoch 1"), "{metrics}");
    let (_, routing) = http_get(h, "/api/v1/routing").unwrap();
    let routing: serde_json::Value = serde_json::from_str(&routing).unwrap();
    assert_eq!(routing["placements"].as_array().unwrap().len(), 4);
    assert_eq!(http_get(h, "/why").unwrap().0, 200);

    // `tidal status` sees every node and PRG.
    let out = std::process::Command::new(common::BIN).args(["status", "--json", "--http", h]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["nodes"].as_array().unwrap().len(), 3);
    let groups = status["prgs"].as_array().unwrap();
    assert_eq!(groups.len(), 5, "4 PRGs and _cp: {groups:?}");
    assert!(groups.iter().all(|g| g["leader"].is_u64()));
    // Its reader goes away before it prints (`tidal status | head -0`): it
    // stops quietly, as a command stopped by SIGPIPE does, without a panic.
    let mut status = std::process::Command::new(common::BIN)
        .args(["status", "--http", h])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(status.stdout.take());
    let out = status.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(matches!(out.status.code(), Some(0 | 141)), "{:?}: {stderr}", out.status);

    // A malformed frame: protocol error, then the connection closes.
    let mut m = c.client(0);
    m.send_raw(b"*1\r\n$abc\r\n").unwrap();
    assert!(matches!(m.read().unwrap(), Value::Error(e) if e.starts_with("ERR Protocol error")));
    assert!(m.read().is_err());
    let _ = Duration::from_secs(0);
}

#[test]
fn bad_node_settings_are_all_reported_with_exit_code_64() {
    let out = std::process::Command::new(common::BIN)
        .args(["node", "--node-id", "0", "--listen", "nowhere", "--prgs", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    for key in ["node-id", "listen", "client-addr", "http-addr", "data-dir", "peers/join", "prgs"] {
        assert!(err.contains(key), "stderr should name {key}: {err}");
    }
    let out = std::process::Command::new(common::BIN).args(["node", "--node-id", "abc"]).output().unwrap();
    assert_eq!(out.status.code(), Some(64));

    // The TOML file is validated the same way; flags override it.
    let tmp = common::tempdir::TempDir::new("tidal-config");
    let file = tmp.path().join("node.toml");
    std::fs::write(&file, "node-id = 3\nlisten = \"127.0.0.1:1\"\nprgz = 4\n").unwrap();
    let out = std::process::Command::new(common::BIN).arg("node").arg("--config").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("prgz"), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::write(&file, "node-id = 0\nzone = \"a\"\n").unwrap();
    let out = std::process::Command::new(common::BIN)
        .arg("node")
        .arg("--config")
        .arg(&file)
        .args(["--node-id", "0"])
        .env("TIDAL_LISTEN", "bad-address")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("node-id") && err.contains("bad-address"), "{err}");
}

#[test]
fn a_node_joins_a_running_cluster_and_routes_for_clients() {
    let mut c = Cluster::start(3, &[]);
    assert_eq!(c.client(0).cmd(&["SET", "before-join", "1"]).unwrap(), ok());
    let j = c.add_joiner();
    c.wait_ready(j, Duration::from_secs(60));
    let mut d = c.client(j);
    assert_eq!(d.cmd(&["GET", "before-join"]).unwrap(), bulk("1"));
    assert_eq!(d.cmd(&["SET", "via-joiner", "2"]).unwrap(), ok());
    assert_eq!(c.client(1).cmd(&["GET", "via-joiner"]).unwrap(), bulk("2"));
    common::wait_for(Duration::from_secs(10), "node 2 to see 4 nodes", || {
        let (_, nodes) = http_get(&c.nodes[1].http, "/api/v1/nodes").ok()?;
        let nodes: serde_json::Value = serde_json::from_str(&nodes).ok()?;
        (nodes.as_array()?.len() == 4).then_some(())
    });
    // Placements do not change when a node joins; scaling moves data later.
    let (_, routing) = http_get(&c.nodes[j].http, "/api/v1/routing").unwrap();
    let routing: serde_json::Value = serde_json::from_str(&routing).unwrap();
    assert!(routing["placements"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| !p["members"].as_array().unwrap().contains(&4.into())));
}

/// A second process that claims a registered node id from another data
/// directory is refused by the control plane and exits with the reason;
/// the registered node keeps its id, and a data directory cannot be started
/// under another node's id.
#[test]
fn a_second_node_with_a_registered_id_is_refused_and_exits() {
    let c = Cluster::start(3, &[]);
    let before = http_get(&c.nodes[0].http, "/api/v1/nodes").unwrap().1;
    let dir = c.nodes[0].dir.parent().unwrap().join("impostor");
    // Port 0: the node binds whatever is free and advertises that, so no
    // other process can take a port between its choice and its bind.
    let any = "127.0.0.1:0";
    // Run a node that joins through `via` until it exits.
    let node = |id: &str, via: &str, dir: &std::path::Path| {
        std::process::Command::new(common::BIN)
            .arg("node")
            .args(["--node-id", id, "--listen", any, "--client-addr", any, "--http-addr", any])
            .args(["--join", via, "--insecure"])
            .arg("--data-dir")
            .arg(dir)
            .env("TIDAL_LOG", "warn")
            .output()
            .unwrap()
    };
    let out = node("2", &c.nodes[0].peer, &dir);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("node id 2 is already registered"), "{err}");
    let after = http_get(&c.nodes[0].http, "/api/v1/nodes").unwrap().1;
    let peer = |body: &str| -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        v.as_array().unwrap().iter().find(|n| n["id"] == 2).unwrap()["peerAddr"].clone()
    };
    assert_eq!(peer(&after), peer(&before));
    assert_eq!(c.client(1).cmd(&["SET", "still", "served"]).unwrap(), ok());

    // Node 1's data directory does not start as node 5.
    let out = node("5", &c.nodes[1].peer, &c.nodes[0].dir);
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("belongs to node 1"), "{err}");
}

/// Node `i`'s count of expired keys its PRG leaders deleted.
fn reaped(c: &Cluster, i: usize) -> u64 {
    let (_, body) = http_get(&c.nodes[i].http, "/metrics").unwrap();
    body.lines().find_map(|l| l.strip_prefix("tidal_expired_keys_reaped_total ")?.trim().parse().ok()).unwrap_or(0)
}

/// Keys with a TTL whose deadlines node `i`'s replicas note.
fn noted(c: &Cluster, i: usize) -> u64 {
    let (_, body) = http_get(&c.nodes[i].http, "/metrics").unwrap();
    body.lines().find_map(|l| l.strip_prefix("tidal_expiry_noted_keys ")?.trim().parse().ok()).unwrap_or(0)
}

#[test]
fn expired_keys_nobody_reads_are_deleted_by_their_leaders() {
    let c = Cluster::start(3, &[]);
    let mut a = c.client(0);
    for i in 0..50 {
        assert_eq!(a.cmd(&["SET", &format!("long{i}"), "v", "EX", "600"]).unwrap(), ok());
        assert_eq!(a.cmd(&["SET", &format!("plain{i}"), "v"]).unwrap(), ok());
    }
    assert_eq!(a.cmd(&["HSET", "h", "f1", "1", "f2", "2"]).unwrap(), Value::Int(2));
    assert_eq!(a.cmd(&["PEXPIRE", "h", "3000"]).unwrap(), Value::Int(1));
    for i in 0..50 {
        assert_eq!(a.cmd(&["SET", &format!("short{i}"), "v", "PX", "3000"]).unwrap(), ok());
    }
    assert_eq!(a.cmd(&["DBSIZE"]).unwrap(), Value::Int(151));
    // Every replica notes the deadlines it applies (each node holds a
    // replica of every PRG).
    common::wait_for(Duration::from_secs(5), "every node to note 101 deadlines", || {
        (0..3).all(|i| noted(&c, i) == 101).then_some(())
    });
    // Nothing reads the short-lived keys again: the leaders delete them.
    common::wait_for(Duration::from_secs(15), "DBSIZE to drop to the keys still live", || {
        (a.cmd(&["DBSIZE"]).unwrap() == Value::Int(100)).then_some(())
    });
    let total: u64 = (0..3).map(|i| reaped(&c, i)).sum();
    assert_eq!(total, 51, "each expired key deleted once, by its PRG's leader");
    common::wait_for(Duration::from_secs(5), "every node to forget the deleted keys", || {
        (0..3).all(|i| noted(&c, i) == 50).then_some(())
    });
    assert_eq!(a.cmd(&["GET", "long7"]).unwrap(), bulk("v"));
    assert_eq!(a.cmd(&["GET", "plain7"]).unwrap(), bulk("v"));
    assert_eq!(a.cmd(&["EXISTS", "h", "short7"]).unwrap(), Value::Int(0));
}

/// The text of an INFO reply's `name:` line.
fn info_line(cl: &mut common::Client, section: &str, name: &str) -> Option<String> {
    let Value::Bulk(text) = cl.cmd(&["INFO", section]).unwrap() else { panic!("INFO") };
    let text = String::from_utf8(text).unwrap();
    text.lines().find_map(|l| l.strip_prefix(&format!("{name}:")).map(str::to_string))
}

#[test]
fn info_counts_each_command_and_error_code_until_config_resetstat() {
    let c = Cluster::start(3, &[]);
    let mut cl = c.client(0);
    cl.cmd(&["CONFIG", "RESETSTAT"]).unwrap();
    // Pipelined SETs run together; each is counted.
    let mut pipeline = Vec::new();
    for i in 0..5 {
        let key = format!("k{i}");
        pipeline.extend(common::Client::encode(&[b"SET", key.as_bytes(), b"v"]));
    }
    cl.send_raw(&pipeline).unwrap();
    for _ in 0..5 {
        assert_eq!(cl.read().unwrap(), ok());
    }
    assert_eq!(cl.cmd(&["GET", "k1"]).unwrap(), bulk("v"));
    assert!(cl.cmd(&["GET"]).unwrap().is_error(), "refused: wrong argument count");
    cl.cmd(&["XADD", "s", "1-1", "f", "v"]).unwrap();
    let nogroup = cl.cmd(&["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"]).unwrap();
    assert!(nogroup.is_error(), "{nogroup:?}");
    let set = info_line(&mut cl, "commandstats", "cmdstat_set").unwrap();
    assert!(set.starts_with("calls=5,") && set.ends_with(",rejected_calls=0,failed_calls=0"), "{set}");
    let get = info_line(&mut cl, "commandstats", "cmdstat_get").unwrap();
    assert!(get.starts_with("calls=1,") && get.ends_with(",rejected_calls=1,failed_calls=0"), "{get}");
    let xreadgroup = info_line(&mut cl, "commandstats", "cmdstat_xreadgroup").unwrap();
    assert!(xreadgroup.starts_with("calls=1,") && xreadgroup.ends_with("failed_calls=1"), "{xreadgroup}");
    assert_eq!(info_line(&mut cl, "errorstats", "errorstat_NOGROUP").as_deref(), Some("count=1"));
    assert_eq!(info_line(&mut cl, "errorstats", "errorstat_ERR").as_deref(), Some("count=1"));
    assert_eq!(info_line(&mut cl, "stats", "total_error_replies").as_deref(), Some("2"));
    // Another node counts its own.
    assert_eq!(info_line(&mut c.client(1), "errorstats", "errorstat_NOGROUP"), None);
    cl.cmd(&["CONFIG", "RESETSTAT"]).unwrap();
    assert_eq!(info_line(&mut cl, "errorstats", "errorstat_NOGROUP"), None);
    assert_eq!(info_line(&mut cl, "stats", "total_error_replies").as_deref(), Some("0"));
}

/// INFO's `rdb_changes_since_last_save` counts the changes applied to the
/// whole keyspace as Redis counts its own (a SETBIT that changes no bit
/// counts none, and leaves a WATCH on its key holding), from the last
/// SAVE on the node asked.
#[test]
fn info_counts_the_changes_applied_since_save() {
    let c = Cluster::start(3, &[]);
    let mut a = c.client(0);
    let mut b = c.client(1);
    let changes = |cl: &mut common::Client| -> u64 {
        info_line(cl, "persistence", "rdb_changes_since_last_save").unwrap().parse().unwrap()
    };
    assert_eq!(a.cmd(&["SAVE"]).unwrap(), ok());
    assert_eq!(changes(&mut a), 0);
    let before_b = changes(&mut b);
    // Keys of several slots and PRGs: three changes.
    assert_eq!(a.cmd(&["MSET", "x", "1", "y", "2"]).unwrap(), ok());
    assert_eq!(a.cmd(&["SETBIT", "bits", "7", "1"]).unwrap(), Value::Int(0));
    assert_eq!(changes(&mut a), 3);
    // A bit set to what it was changes nothing, and WATCH holds.
    a.cmd(&["WATCH", "bits"]).unwrap();
    assert_eq!(a.cmd(&["SETBIT", "bits", "7", "1"]).unwrap(), Value::Int(1));
    assert_eq!(a.cmd(&["SETBIT", "bits", "3", "0"]).unwrap(), Value::Int(0));
    assert_eq!(changes(&mut a), 3);
    a.cmd(&["MULTI"]).unwrap();
    a.cmd(&["SETBIT", "bits", "0", "1"]).unwrap();
    assert_eq!(a.cmd(&["EXEC"]).unwrap(), Value::Array(vec![Value::Int(0)]));
    assert_eq!(changes(&mut a), 4);
    // Every node counts the whole keyspace, from its own last SAVE.
    assert_eq!(changes(&mut b), before_b + 4);
    assert_eq!(a.cmd(&["SAVE"]).unwrap(), ok());
    assert_eq!(changes(&mut a), 0);
    let saved: u64 = info_line(&mut a, "persistence", "rdb_last_save_time").unwrap().parse().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(saved.abs_diff(now) <= 5, "last save {saved}, now {now}");
}
