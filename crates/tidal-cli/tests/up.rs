//! `tidal up` as a user runs it: start, write, Ctrl-C, start again on the
//! same data directory, read the data back.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{wait_for, Client, Value};

fn free_base_port(nodes: u16) -> u16 {
    // A base port whose +0/+100/+200 ranges are free right now, all below
    // the kernel's ephemeral range (32768 and up): a port in that range can
    // be taken as the source port of an outgoing connection between this
    // check and the moment `tidal up` starts a node on it (node 5 of a
    // scale-up starts minutes after the check). The fixture's ports
    // (17700-17999) are left alone.
    for attempt in 0..200u32 {
        let base = 10_000 + ((std::process::id() as u64 * 7919 + rand_offset() + attempt as u64 * 331) % 22_400) as u16;
        if (17_400..18_000).contains(&base) {
            continue;
        }
        let ok = (0..nodes).all(|i| {
            [0u16, 100, 200].iter().all(|off| std::net::TcpListener::bind(("127.0.0.1", base + off + i)).is_ok())
        });
        if ok {
            return base;
        }
    }
    panic!("no free base port");
}

fn rand_offset() -> u64 {
    u64::from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos())
}

/// Start `tidal up --insecure` (the tests read its HTTP port in plain
/// HTTP), wait for its endpoint listing, return the child.
fn up(base: u16, dir: &std::path::Path) -> std::process::Child {
    up_with(base, dir, &["--prgs", "2", "--insecure"])
}

fn up_with(base: u16, dir: &std::path::Path, args: &[&str]) -> std::process::Child {
    let mut child = Command::new(common::BIN)
        .args(["up", "--base-port", &base.to_string()])
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    loop {
        let line = lines.next().expect("tidal up ended before listing endpoints").unwrap();
        let done = line.starts_with("try: redis-cli");
        seen.push(line);
        if done {
            break;
        }
    }
    assert!(seen.iter().any(|l| l.contains(&format!("redis 127.0.0.1:{base}"))), "{seen:?}");
    std::thread::spawn(move || for _ in lines {});
    child
}

fn interrupt_and_wait(child: &mut std::process::Child) {
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let status = wait_for(Duration::from_secs(40), "tidal up to stop", || child.try_wait().unwrap());
    assert!(status.success(), "tidal up exited with {status}");
}

#[test]
fn up_starts_a_cluster_that_comes_back_with_its_data() {
    let tmp = common::tempdir::TempDir::new("tidal-up");
    let dir = tmp.path().join("data");
    let base = free_base_port(3);
    // As a user runs it: with certificates, made on the first run.
    let mut child = up_with(base, &dir, &["--prgs", "2"]);
    let http = format!("127.0.0.1:{}", base + 100);
    let certs = dir.join("certs");
    for f in ["ca.crt", "ca.key", "client.root.crt", "client.root.key", "node-1/node.crt", "node-3/node.key"] {
        assert!(certs.join(f).exists(), "tidal up made {f}");
    }
    // The CLI reaches the admin API with the operator's certificate ...
    let status = |extra: &[&str]| {
        Command::new(common::BIN).args(["status", "--http", &http, "--json"]).args(extra).output().unwrap()
    };
    let out = status(&["--client-certs", certs.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["nodes"].as_array().map(Vec::len), Some(3), "{v}");
    // ... and not without it: the HTTP port speaks only TLS, and asks
    // for a certificate.
    assert!(!status(&[]).status.success());
    let (code, _) = common::https(&http, "GET", "/api/v1/cluster", &certs, None, None).unwrap();
    assert_eq!(code, 401);
    let (code, _) = common::https(&http, "GET", "/readyz", &certs, None, None).unwrap();
    assert_eq!(code, 200, "probes stay open");
    let addr = format!("127.0.0.1:{base}");
    let mut c = Client::connect(&addr).unwrap();
    for i in 0..50 {
        assert_eq!(c.cmd(&["SET", &format!("k{i}"), &format!("v{i}")]).unwrap(), Value::Simple("OK".into()));
    }
    drop(c);
    interrupt_and_wait(&mut child);
    assert!(std::net::TcpStream::connect(&addr).is_err(), "nodes must be gone after Ctrl-C");

    let mut child = up_with(base, &dir, &["--prgs", "2"]);
    let mut c = Client::connect(&format!("127.0.0.1:{}", base + 2)).unwrap();
    for i in 0..50 {
        assert_eq!(c.cmd(&["GET", &format!("k{i}")]).unwrap(), Value::bulk(&format!("v{i}")));
    }
    interrupt_and_wait(&mut child);
}

/// The admin API's JSON answer to a `tidal` command run against `http`.
fn tidal_json(http: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new(common::BIN).args(args).args(["--http", http, "--json"]).output().unwrap();
    assert!(out.status.success(), "tidal {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A data directory written by the tidal from before slots moved (rows
/// stored by key alone, control-plane state and entries without a format
/// version): `tidal up` of that version, 300 keys and one with a TTL, then
/// Ctrl-C. It starts, serves every key, takes a slot move, and comes back
/// after another restart with the move in place.
#[test]
fn a_data_directory_from_before_slot_moves_starts_and_moves_slots() {
    let tmp = common::tempdir::TempDir::new("tidal-v0");
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/cluster-v0.tar.gz");
    let untar = Command::new("tar").args(["xzf", fixture, "-C"]).arg(tmp.path()).status().unwrap();
    assert!(untar.success());
    let dir = tmp.path().join("data");
    // The fixture's cluster was made on base port 17700; its Raft groups know those addresses.
    let base = 17700;
    let http = "127.0.0.1:17800";
    let mut child = up(base, &dir);
    let mut c = Client::connect(&format!("127.0.0.1:{base}")).unwrap();
    // The fixture's TTL key expires on the wall clock some time after the
    // fixture was made: before then it is served with its TTL, after it
    // is gone; it is never served without one.
    let keys = wait_for(Duration::from_secs(30), "every old key to be served", || {
        let Value::Int(n) = c.cmd(&["DBSIZE"]).ok()? else { return None };
        (n == 300 || n == 301).then_some(n)
    });
    for i in (0..300).step_by(7) {
        assert_eq!(c.cmd(&["GET", &format!("old{i}")]).unwrap(), Value::bulk(&format!("value-{i}")));
    }
    let ttl = c.cmd(&["TTL", "ttl"]).unwrap();
    assert!(matches!(ttl, Value::Int(t) if (t > 0 && keys == 301) || (t == -2 && keys == 300)), "{ttl:?}, {keys} keys");

    let added = tidal_json(http, &["prgs", "add", "--count", "1"]);
    assert_eq!(added["prgs"][0], "default:2");
    let moved = tidal_json(http, &["move", "slots", "--slots", "0-15", "--to", "default:2", "--wait"]);
    assert_eq!(moved["state"], "done", "{moved}");
    assert_eq!(c.cmd(&["DBSIZE"]).unwrap(), Value::Int(keys));
    drop(c);
    interrupt_and_wait(&mut child);

    let mut child = up(base, &dir);
    let mut c = Client::connect(&format!("127.0.0.1:{}", base + 1)).unwrap();
    wait_for(Duration::from_secs(30), "the keys after a restart", || {
        (c.cmd(&["DBSIZE"]).ok()? == Value::Int(keys)).then_some(())
    });
    for i in 0..300 {
        assert_eq!(c.cmd(&["GET", &format!("old{i}")]).unwrap(), Value::bulk(&format!("value-{i}")), "old{i}");
    }
    let routing: serde_json::Value =
        serde_json::from_str(&common::http_get(http, "/api/v1/routing").unwrap().1).unwrap();
    assert_eq!(routing["tenants"][0]["ranges"][0], serde_json::json!([0, 15, "default:2"]), "{routing}");
    interrupt_and_wait(&mut child);
}

/// The first tenant of `tidal up --nodes 5` spreads over all five nodes,
/// not only the first three that registered.
#[test]
fn up_places_the_first_tenant_on_every_node() {
    let tmp = common::tempdir::TempDir::new("tidal-up5");
    let dir = tmp.path().join("data");
    let base = free_base_port(5);
    let mut child = up_with(base, &dir, &["--nodes", "5", "--prgs", "5", "--insecure"]);
    let http = format!("127.0.0.1:{}", base + 100);
    let routing = wait_for(Duration::from_secs(30), "the first tenant's placements", || {
        let r: serde_json::Value = serde_json::from_str(&common::http_get(&http, "/api/v1/routing").ok()?.1).ok()?;
        (r["placements"].as_array()?.len() == 5).then_some(r)
    });
    let mut hosts = std::collections::BTreeMap::<u64, usize>::new();
    for p in routing["placements"].as_array().unwrap() {
        for m in p["members"].as_array().unwrap() {
            *hosts.entry(m.as_u64().unwrap()).or_default() += 1;
        }
    }
    // 15 replicas over 5 nodes: 3 each.
    assert_eq!(hosts, (1..=5).map(|n| (n, 3)).collect(), "{routing}");
    interrupt_and_wait(&mut child);
}

/// `tidal up` is the local provider: `tidal scale --nodes 5` on its
/// three-node cluster gets nodes 4 and 5 started on the layout's next
/// ports, the operation places replicas on them, and a later `tidal up`
/// brings all five back.
#[test]
fn up_starts_the_nodes_a_scale_up_asks_for_and_brings_them_back() {
    let tmp = common::tempdir::TempDir::new("tidal-up-scale");
    let dir = tmp.path().join("data");
    let base = free_base_port(5);
    let mut child = up(base, &dir);
    let http = format!("127.0.0.1:{}", base + 100);
    let mut c = Client::connect(&format!("127.0.0.1:{base}")).unwrap();
    for i in 0..100 {
        assert_eq!(c.cmd(&["SET", &format!("k{i}"), &format!("v{i}")]).unwrap(), Value::Simple("OK".into()));
    }
    drop(c);
    let op = tidal_json(&http, &["scale", "--nodes", "5", "--prgs", "default=4", "--wait"]);
    assert_eq!(op["status"], "succeeded", "{op:#}");
    let layout: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("up.json")).unwrap()).unwrap();
    assert_eq!((layout["nodes"].as_u64(), layout["initial"].as_u64()), (Some(5), Some(3)), "{layout}");
    let hosted = |http: &str| {
        let r: serde_json::Value = serde_json::from_str(&common::http_get(http, "/api/v1/routing").unwrap().1).unwrap();
        let mut hosts = std::collections::BTreeSet::new();
        for p in r["placements"].as_array().unwrap() {
            hosts.extend(p["members"].as_array().unwrap().iter().map(|m| m.as_u64().unwrap()));
        }
        hosts
    };
    assert_eq!(hosted(&http), (1..=5).collect(), "every node holds replicas");
    interrupt_and_wait(&mut child);

    let mut child = up(base, &dir);
    let node5 = format!("127.0.0.1:{}", base + 4);
    let mut c = wait_for(Duration::from_secs(30), "node 5 to serve again", || Client::connect(&node5).ok());
    wait_for(Duration::from_secs(30), "every key through node 5", || {
        (c.cmd(&["DBSIZE"]).ok()? == Value::Int(100)).then_some(())
    });
    for i in (0..100).step_by(9) {
        assert_eq!(c.cmd(&["GET", &format!("k{i}")]).unwrap(), Value::bulk(&format!("v{i}")));
    }
    interrupt_and_wait(&mut child);
}
