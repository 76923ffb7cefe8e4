//! `tidal bench` against real clusters: `--verify` across a SIGKILL and a
//! restart, the HTTP target with a spike scenario, and bad input.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Cluster, BIN};

fn bench(args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.arg("bench").args(args).env("TIDAL_LOG", "warn").stdin(Stdio::null());
    c
}

fn summary_of(stdout: &[u8]) -> serde_json::Value {
    serde_json::from_slice(stdout).unwrap_or_else(|e| panic!("bench --json - printed no JSON ({e})"))
}

/// Load with verification while one node is SIGKILLed and restarted: the
/// run goes on against the other endpoints, errors are reported as errors,
/// and every acknowledged write is read back.
#[test]
fn verify_survives_a_node_killed_and_restarted() {
    let mut cluster = Cluster::start(3, &[]);
    let endpoints: Vec<&str> = cluster.nodes.iter().map(|n| n.redis.as_str()).collect();
    let target = format!("resp://{}", endpoints.join(","));
    let child = bench(&[
        "--target",
        &target,
        "--clients",
        "8",
        "--duration",
        "14s",
        "--workload",
        "a",
        "--keys",
        "3000",
        "--verify",
        "--verify-every",
        "5s",
        "--timeout",
        "2s",
        "--json",
        "-",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("start tidal bench");

    std::thread::sleep(Duration::from_secs(3));
    cluster.kill(1);
    std::thread::sleep(Duration::from_secs(4));
    cluster.spawn(1);

    let started = Instant::now();
    let out = child.wait_with_output().expect("tidal bench runs to the end");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(started.elapsed() < Duration::from_secs(90), "bench took too long to stop");
    let s = summary_of(&out.stdout);
    let v = &s["verify"];
    assert_eq!(v["lost"], 0, "{v}\n{stderr}");
    assert_eq!(v["stale"], 0, "{v}\n{stderr}");
    assert_eq!(v["phantom"], 0, "{v}\n{stderr}");
    assert_eq!(v["unverified"], 0, "{v}\n{stderr}");
    assert!(v["acked_writes"].as_u64().unwrap() > 200, "{v}");
    assert!(v["reads_checked"].as_u64().unwrap() > 200, "{v}");
    assert!(v["keys_checked"].as_u64().unwrap() > 100, "{v}");
    // Every recorded operation, across the kill, is linearizable per key.
    let h = &v["history"];
    assert_eq!(h["violations"], 0, "{h}\n{stderr}");
    assert_eq!(h["unknown"], 0, "{h}");
    assert_eq!(h["skipped"], serde_json::Value::Null, "{h}");
    assert!(h["ops"].as_u64().unwrap() > 500, "{h}");
    assert!(stderr.contains("keys not linearizable"), "the summary names the check: {stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let steady = &s["phases"][0];
    assert_eq!(steady["name"], "steady");
    assert!(steady["ops"].as_u64().unwrap() > 500, "{steady}");
    // The killed node's clients saw errors, counted apart from losses.
    assert!(steady["errors"].as_u64().unwrap() > 0, "{steady}");
    // Reads and updates each have their own percentiles.
    for op in ["read", "update"] {
        assert!(steady["by_op"][op]["p99_us"].as_u64().unwrap() > 0, "{steady}");
    }
}

/// The HTTP data API as a target in a spike scenario (three phases, each
/// reported on its own, the peak running more clients), an open-loop rate,
/// and a stress run that reports its breaking point.
#[test]
fn scenarios_and_open_loop() {
    let cluster = Cluster::start(3, &[]);
    let target = format!("http://{}", cluster.nodes[0].http);
    let out = bench(&[
        "--target",
        &target,
        "--clients",
        "2",
        "--spike-clients",
        "8",
        "--scenario",
        "spike",
        "--duration",
        "3s",
        "--workload",
        "mixed:80/20",
        "--keys",
        "500",
        "--load",
        "--verify",
        "--json",
        "-",
    ])
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let s = summary_of(&out.stdout);
    let names: Vec<&str> = s["phases"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["load", "base", "spike", "recover"]);
    assert_eq!(s["phases"][0]["ops"], 500, "the load phase writes every key once");
    assert_eq!(s["phases"][2]["clients"], 8);
    for p in s["phases"].as_array().unwrap() {
        assert!(p["ops"].as_u64().unwrap() > 0, "{p}");
        assert_eq!(p["errors"], 0, "{p}");
    }
    assert_eq!(s["verify"]["lost"], 0);
    assert_eq!(s["workload"]["name"], "mixed:80/20");
    assert!(s["machine"]["cores"].as_u64().unwrap() >= 1);
    // A live line a second on stderr, and the human summary.
    assert!(stderr.contains("[spike]") && stderr.contains("ops/s"), "{stderr}");

    // Open loop: the rate, not the server's speed, sets the request count
    // (with clients enough to keep up at a loaded machine's latency).
    let resp = format!("resp://{}", cluster.nodes[1].redis);
    let out = bench(&["--target", &resp, "--rate", "100", "--clients", "16", "--duration", "2s", "--json", "-"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let s = summary_of(&out.stdout);
    let ops = s["phases"][0]["ops"].as_u64().unwrap();
    assert!((150..=210).contains(&ops), "100 ops/s for 2 s gave {ops}");
    assert_eq!(s["workload"]["rate"], 100);

    // Stress: a p99 limit no request can meet breaks the first step.
    let out = bench(&[
        "--target",
        &resp,
        "--scenario",
        "stress",
        "--clients",
        "1",
        "--stress-step",
        "2",
        "--stress-max-clients",
        "5",
        "--duration",
        "1s",
        "--stress-p99",
        "1us",
        "--json",
        "-",
    ])
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let s = summary_of(&out.stdout);
    assert_eq!(s["phases"].as_array().unwrap().len(), 1, "the run stops at the breaking step");
    assert_eq!(s["breaking_point"]["clients"], 1);
    assert!(s["breaking_point"]["reason"].as_str().unwrap().starts_with("p99"), "{}", s["breaking_point"]);
}

/// Bad flags and unreachable targets: one line, exit 64, before any load.
#[test]
fn bad_input_exits_64_with_one_line() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let unreachable = format!("resp://127.0.0.1:{closed}");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--target".into(), "mongo://127.0.0.1:1".into()], "unknown scheme"),
        (vec!["--target".into(), unreachable.clone()], "unreachable"),
        (vec!["--target".into(), unreachable.clone(), "--duration".into(), "ten".into()], "--duration"),
        (vec!["--target".into(), unreachable.clone(), "--workload".into(), "mixed:60/60".into()], "--workload"),
        (vec!["--target".into(), unreachable.clone(), "--scenario".into(), "burst".into()], "--scenario"),
        (vec!["--target".into(), unreachable, "--bogus".into()], "--bogus"),
    ];
    for (args, expect) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let started = Instant::now();
        let out = bench(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {stderr}");
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?} printed a summary");
        assert!(started.elapsed() < Duration::from_secs(10), "{args:?} took too long");
        if !args.contains(&"--bogus") {
            assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        }
    }
}
