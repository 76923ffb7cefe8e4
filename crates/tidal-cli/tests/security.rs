//! A cluster started with certificates, as `tidal certs` makes them: the
//! peer port takes only nodes of the cluster, and only what each may say;
//! the admin API wants a client certificate or the admin token; clients
//! log in with Redis's AUTH, over TLS when asked; certificates rotate on
//! SIGHUP without a restart.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::{https, wait_for, Cluster, Value};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS connection to `addr` trusting the CA of `ca_dir`, showing the
/// certificate and key in `cert` and `key` (when given).
fn tls_connect(
    addr: &str,
    ca_dir: &Path,
    client: Option<(&Path, &Path)>,
) -> std::io::Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca_dir.join("ca.crt")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let b = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        Some((cert, key)) => {
            let chain: Vec<_> = CertificateDer::pem_file_iter(cert).unwrap().map(Result::unwrap).collect();
            b.with_client_auth_cert(chain, PrivateKeyDer::from_pem_file(key).unwrap()).unwrap()
        }
        None => b.with_no_client_auth(),
    };
    let conn = rustls::ClientConnection::new(Arc::new(config), ServerName::try_from("127.0.0.1").unwrap()).unwrap();
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut s = rustls::StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock)?;
    }
    Ok(s)
}

/// Send one peer frame and read the answer; `Err` when the node closes
/// the connection instead.
fn peer_call(
    s: &mut impl ReadWrite,
    body: tidal_raft::transport::Request,
) -> std::io::Result<tidal_raft::transport::Frame> {
    peer_call_to(s, "default:0", body)
}

fn peer_call_to(
    s: &mut impl ReadWrite,
    group: &str,
    body: tidal_raft::transport::Request,
) -> std::io::Result<tidal_raft::transport::Frame> {
    use tidal_raft::transport::{decode_frame, encode_frame, Frame, MAX_FRAME};
    let mut out = Vec::new();
    encode_frame(&Frame::Request { id: 1, group: group.into(), epoch: 1, body }, &mut out, MAX_FRAME).unwrap();
    s.write_all(&out)?;
    s.flush()?;
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let mut buf = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut buf)?;
    decode_frame(&buf).map_err(std::io::Error::other)
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

fn vote_from(node: u64) -> tidal_raft::transport::Request {
    tidal_raft::transport::Request::Vote(openraft::raft::VoteRequest::new(openraft::Vote::new(9, node), None))
}

#[test]
fn the_peer_port_takes_only_nodes_and_only_what_each_may_say() {
    let c = Cluster::start_secure(3, &[]);
    let ca = c.certs.clone().unwrap();
    let peer = &c.nodes[0].peer;
    let node2 = ca.join("node-2");
    let (cert2, key2) = (node2.join("node.crt"), node2.join("node.key"));

    // Node 2's certificate may speak for node 2, not for node 5.
    let mut s = tls_connect(peer, &ca, Some((&cert2, &key2))).expect("a node's certificate is taken");
    match peer_call(&mut s, vote_from(5)).unwrap() {
        tidal_raft::transport::Frame::Response {
            body: Err(tidal_raft::transport::WireError::Forbidden(e)), ..
        } => {
            assert!(e.contains("claims node 5"), "{e}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // An operator's certificate chains to the same CA but is not a node's:
    // the connection is closed before any frame is read.
    let root = (ca.join("client.root.crt"), ca.join("client.root.key"));
    let refused = tls_connect(peer, &ca, Some((&root.0, &root.1)))
        .and_then(|mut s| peer_call(&mut s, vote_from(1)))
        .expect_err("a client certificate on the peer port");
    drop(refused);
    // No certificate at all: the handshake fails.
    assert!(tls_connect(peer, &ca, None).and_then(|mut s| peer_call(&mut s, vote_from(1))).is_err());
    // A node certificate from another CA: the handshake fails.
    let tmp = common::tempdir::TempDir::new("tidal-other-ca");
    let other = tmp.path().join("ca");
    common::certs_cmd(&["init", "--dir"], &other);
    common::certs_cmd(&["node", "--id", "2", "--dir"], &other);
    let o = other.join("node-2");
    let e = tls_connect(peer, &ca, Some((&o.join("node.crt"), &o.join("node.key"))))
        .and_then(|mut s| peer_call(&mut s, vote_from(2)));
    assert!(e.is_err(), "a certificate of another CA");
    // Plain TCP gets nothing either, not even a control-plane proposal.
    let evil = tidal_control::api::CpRequest::Propose(tidal_control::CpCommand::CreateTenant {
        name: "evil".into(),
        slots: 16,
        prgs: 1,
    });
    let propose = || tidal_raft::transport::Request::App(tidal_raft::types::encode(&evil));
    for i in 0..3 {
        let mut plain = TcpStream::connect(&c.nodes[i].peer).unwrap();
        plain.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert!(peer_call_to(&mut plain, "_cp", propose()).is_err());
    }
    // Nor one with an operator's certificate.
    let by_client =
        tls_connect(peer, &ca, Some((&root.0, &root.1))).and_then(|mut s| peer_call_to(&mut s, "_cp", propose()));
    assert!(by_client.is_err());
    let cluster = c.get(0, "/api/v1/cluster").unwrap().1;
    assert!(!cluster.contains("evil"), "{cluster}");
    assert!(c.log(0).contains("peer refused"), "the node says why");
    let metrics = c.get(0, "/metrics").unwrap().1;
    let count = |name: &str| -> u64 {
        let line = metrics.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no {name}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert!(count("tidal_peer_refused_total") >= 4, "{metrics}");
    assert_eq!(count("tidal_peer_forbidden_frames_total"), 1);

    // A node with a certificate of another CA cannot join.
    common::certs_cmd(&["node", "--id", "4", "--dir"], &other);
    let port = || format!("127.0.0.1:{}", common::free_port());
    let mut stranger = Command::new(common::BIN)
        .args(["node", "--node-id", "4", "--listen", &port(), "--client-addr", &port(), "--http-addr", &port()])
        .args(["--join", peer, "--data-dir"])
        .arg(tmp.path().join("node-4"))
        .arg("--certs-dir")
        .arg(other.join("node-4"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(5));
    let nodes = c.get(0, "/api/v1/nodes").unwrap().1;
    let _ = stranger.kill();
    let _ = stranger.wait();
    let v: serde_json::Value = serde_json::from_str(&nodes).unwrap();
    assert_eq!(v.as_array().map(Vec::len), Some(3), "a stranger registered: {nodes}");

    // Through all of that the cluster serves.
    let mut client = c.client(1);
    assert_eq!(client.cmd(&["SET", "k", "v"]).unwrap(), Value::Simple("OK".into()));
    assert_eq!(c.client(2).cmd(&["GET", "k"]).unwrap(), Value::bulk("v"));
}

#[test]
fn the_admin_api_wants_a_client_certificate_or_the_token() {
    let tmp = common::tempdir::TempDir::new("tidal-token");
    let token = tmp.path().join("token");
    std::fs::write(&token, "s3cret-token\n").unwrap();
    let c = Cluster::start_secure(3, &["--admin-token-file", token.to_str().unwrap()]);
    let ca = c.certs.clone().unwrap();
    let http = &c.nodes[0].http;
    let get =
        |path: &str, client: Option<&str>, bearer: Option<&str>| https(http, "GET", path, &ca, client, bearer).unwrap();
    assert_eq!(get("/api/v1/cluster", Some("root"), None).0, 200);
    assert_eq!(get("/api/v1/cluster", None, Some("s3cret-token")).0, 200);
    let (code, body) = get("/api/v1/cluster", None, None);
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("client certificate"), "{body}");
    assert_eq!(get("/api/v1/cluster", None, Some("guess")).0, 401);
    // Probes and metrics stay open.
    assert_eq!(get("/readyz", None, None).0, 200);
    assert_eq!(get("/metrics", None, None).0, 200);
    // A drain without credentials is refused and changes nothing.
    let (code, _) = https(http, "POST", "/admin/drain", &ca, None, None).unwrap();
    assert_eq!(code, 401);
    let nodes = get("/api/v1/nodes", Some("root"), None).1;
    assert!(!nodes.contains("draining"), "{nodes}");
    // Plain HTTP is not spoken on a TLS port.
    assert!(common::http_get(http, "/api/v1/cluster").map_or(true, |(code, _)| code != 200));
    // The CLI shows the operator's certificate.
    let out = Command::new(common::BIN)
        .args(["status", "--json", "--http", http, "--client-certs", ca.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Send raw RESP and read what comes back within a moment.
fn resp_round(s: &mut impl ReadWrite, args: &[&str]) -> String {
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req += &format!("${}\r\n{a}\r\n", a.len());
    }
    s.write_all(req.as_bytes()).unwrap();
    s.flush().unwrap();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn clients_log_in_as_redis_clients_do_over_tls() {
    let tmp = common::tempdir::TempDir::new("tidal-pass");
    let pass = tmp.path().join("pass");
    std::fs::write(&pass, "hunter2\n").unwrap();
    let c = Cluster::start_secure(3, &["--requirepass-file", pass.to_str().unwrap(), "--client-tls"]);
    let ca = c.certs.clone().unwrap();
    let redis = &c.nodes[0].redis;

    let mut s = tls_connect(redis, &ca, None).expect("the Redis port speaks TLS");
    assert_eq!(resp_round(&mut s, &["GET", "k"]), "-NOAUTH Authentication required.\r\n");
    assert!(resp_round(&mut s, &["HELLO", "3"]).starts_with("-NOAUTH HELLO must be called"));
    assert_eq!(
        resp_round(&mut s, &["AUTH", "wrong"]),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(resp_round(&mut s, &["AUTH", "hunter2"]), "+OK\r\n");
    assert_eq!(resp_round(&mut s, &["SET", "k", "v"]), "+OK\r\n");
    let mut s2 = tls_connect(redis, &ca, None).unwrap();
    assert!(resp_round(&mut s2, &["HELLO", "3", "AUTH", "default", "nope"]).starts_with("-WRONGPASS"));
    assert!(resp_round(&mut s2, &["HELLO", "3", "AUTH", "default", "hunter2"]).starts_with('%'));
    assert_eq!(resp_round(&mut s2, &["GET", "k"]), "$1\r\nv\r\n");
    assert_eq!(resp_round(&mut s2, &["RESET"]), "+RESET\r\n");
    assert!(resp_round(&mut s2, &["GET", "k"]).starts_with("-NOAUTH"), "RESET logs out");

    // redis-cli, as its users run it.
    let cli = |args: &[&str]| {
        let out = Command::new("redis-cli")
            .args(["--tls", "--cacert", ca.join("ca.crt").to_str().unwrap(), "-p", &redis[10..]])
            .args(args)
            .output()
            .expect("redis-cli (Debian's redis-tools)");
        String::from_utf8_lossy(&out.stdout).trim().to_string() + &String::from_utf8_lossy(&out.stderr)
    };
    assert_eq!(cli(&["-a", "hunter2", "--no-auth-warning", "GET", "k"]), "v");
    assert!(cli(&["GET", "k"]).contains("NOAUTH"));

    // redis-py, as an application uses it: a password, TLS, a pipeline.
    let script = format!(
        "import redis\n\
         r = redis.Redis(host='127.0.0.1', port={port}, password='hunter2', ssl=True, ssl_ca_certs='{ca}')\n\
         r.set('py', 'from python')\n\
         p = r.pipeline(transaction=False)\n\
         p.incr('n'); p.incr('n'); p.get('py')\n\
         print(p.execute())\n\
         try:\n    redis.Redis(host='127.0.0.1', port={port}, password='nope', ssl=True, ssl_ca_certs='{ca}').ping()\n\
         except redis.AuthenticationError as e:\n    print('refused:', e)\n",
        port = &redis[10..],
        ca = ca.join("ca.crt").display()
    );
    let out = Command::new("python3").args(["-c", &script]).output().expect("python3 with redis-py");
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{printed}{}", String::from_utf8_lossy(&out.stderr));
    assert!(printed.starts_with("[1, 2, b'from python']"), "{printed}");
    assert!(printed.contains("refused: invalid username-password pair"), "{printed}");

    // The data API takes the password as a bearer token.
    let http = &c.nodes[1].http;
    let (code, body) = https(http, "GET", "/v1/kv/default/k", &ca, None, None).unwrap();
    assert_eq!(code, 401);
    assert!(body.contains("NOAUTH"), "{body}");
    assert_eq!(https(http, "GET", "/v1/kv/default/k", &ca, None, Some("wrong")).unwrap().0, 401);
    let (code, body) = https(http, "GET", "/v1/kv/default/k", &ca, None, Some("hunter2")).unwrap();
    assert_eq!((code, body.as_str()), (200, "v"));
}

#[test]
fn certificates_rotate_under_load_without_a_restart_or_a_dropped_request() {
    let c = Cluster::start_secure(3, &["--client-tls"]);
    let ca = c.certs.clone().unwrap();
    let served = |i: usize| {
        let s = tls_connect(&c.nodes[i].http, &ca, None).unwrap();
        s.conn.peer_certificates().unwrap()[0].to_vec()
    };
    let before: Vec<Vec<u8>> = (0..3).map(served).collect();

    // Load on every node: long-lived TLS clients, and one that opens a new
    // connection (a new handshake) every few requests.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..4)
        .map(|w| {
            let (stop, ca, addr) = (stop.clone(), ca.clone(), c.nodes[w % 3].redis.clone());
            std::thread::spawn(move || {
                let mut s = tls_connect(&addr, &ca, None).unwrap();
                let (mut done, mut failed) = (0u64, Vec::new());
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if w == 3 && done % 5 == 0 {
                        s = match tls_connect(&addr, &ca, None) {
                            Ok(s) => s,
                            Err(e) => {
                                failed.push(format!("connect: {e}"));
                                continue;
                            }
                        };
                    }
                    let key = format!("w{w}-{done}");
                    let got = resp_round(&mut s, &["SET", &key, "x"]);
                    if got != "+OK\r\n" {
                        failed.push(format!("SET {key}: {got}"));
                    }
                    done += 1;
                }
                (done, failed)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));

    // New certificates for every node, then SIGHUP.
    for (i, n) in c.nodes.iter().enumerate() {
        common::certs_cmd(&["node", "--id", &(i + 1).to_string(), "--overwrite", "--dir"], &ca);
        let pid = n.child.as_ref().unwrap().id().to_string();
        assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    }
    let after: Vec<Vec<u8>> = (0..3)
        .map(|i| {
            wait_for(Duration::from_secs(10), "the new certificate to be served", || {
                let now = served(i);
                (now != before[i]).then_some(now)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for (w, t) in load.into_iter().enumerate() {
        let (done, failed) = t.join().unwrap();
        assert!(failed.is_empty(), "client {w} lost requests: {failed:?}");
        total += done;
    }
    assert!(total > 20, "the load ran: {total} requests");
    // Node 1 talks to its peers after the rotation too.
    let mut s = tls_connect(&c.nodes[0].redis, &ca, None).unwrap();
    for k in 0..20 {
        assert_eq!(resp_round(&mut s, &["SET", &format!("k{k}"), "y"]), "+OK\r\n");
    }

    // A broken file is refused: the certificate in use stays.
    std::fs::write(ca.join("node-1").join("node.crt"), "not a certificate").unwrap();
    let pid = c.nodes[0].child.as_ref().unwrap().id().to_string();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    wait_for(Duration::from_secs(10), "the refusal in the log", || {
        c.log(0).contains("certificates not reloaded").then_some(())
    });
    assert_eq!(served(0), after[0]);
    assert_eq!(resp_round(&mut s, &["GET", "k3"]), "$1\r\ny\r\n");
}

#[test]
fn a_node_refuses_to_start_with_certificates_it_cannot_use() {
    let tmp = common::tempdir::TempDir::new("tidal-badcerts");
    let ca = tmp.path().join("ca");
    common::certs_cmd(&["init", "--dir"], &ca);
    common::certs_cmd(&["node", "--id", "2", "--dir"], &ca);
    let start = |extra: &[&str]| {
        let out = Command::new(common::BIN)
            .args(["node", "--node-id", "1", "--listen", "127.0.0.1:1", "--client-addr", "127.0.0.1:2"])
            .args(["--http-addr", "127.0.0.1:3", "--peers", "1=127.0.0.1:1", "--data-dir"])
            .arg(tmp.path().join("data"))
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(64), "bad configuration");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = start(&[]);
    assert!(e.contains("--certs-dir DIR") && e.contains("--insecure"), "{e}");
    let node2 = ca.join("node-2");
    let e = start(&["--certs-dir", node2.to_str().unwrap()]);
    assert!(e.contains("is the certificate of node 2, this is node 1"), "{e}");
    let e = start(&["--certs-dir", ca.to_str().unwrap()]);
    assert!(e.contains("node.crt"), "{e}");
    let e = start(&["--insecure", "--client-tls"]);
    assert!(e.contains("client-tls: needs --certs-dir"), "{e}");

    // Certificates out of their validity, issued by the right CA.
    let issue = |name: &str, not_before: time::OffsetDateTime, not_after: time::OffsetDateTime| {
        let ca_pem = std::fs::read_to_string(ca.join("ca.crt")).unwrap();
        let ca_key = rcgen::KeyPair::from_pem(&std::fs::read_to_string(ca.join("ca.key")).unwrap()).unwrap();
        let issuer = rcgen::Issuer::from_ca_cert_pem(&ca_pem, ca_key).unwrap();
        let mut p = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        p.subject_alt_names.push(rcgen::SanType::URI("tidal://tidal/node/1".try_into().unwrap()));
        p.extended_key_usages =
            vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth, rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        (p.not_before, p.not_after) = (not_before, not_after);
        let key = rcgen::KeyPair::generate().unwrap();
        let dir = tmp.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(ca.join("ca.crt"), dir.join("ca.crt")).unwrap();
        std::fs::write(dir.join("node.crt"), p.signed_by(&key, &issuer).unwrap().pem()).unwrap();
        std::fs::write(dir.join("node.key"), key.serialize_pem()).unwrap();
        dir
    };
    let now = time::OffsetDateTime::now_utc();
    let day = time::Duration::days(1);
    let expired = issue("expired", now - day * 10, now - day);
    let e = start(&["--certs-dir", expired.to_str().unwrap()]);
    assert!(e.contains("is not valid under") && e.to_lowercase().contains("expired"), "{e}");
    let early = issue("early", now + day, now + day * 10);
    let e = start(&["--certs-dir", early.to_str().unwrap()]);
    assert!(e.contains("is not valid under") && e.to_lowercase().contains("not valid yet"), "{e}");
    let unreadable = tmp.path().join("nothing-here");
    let e = start(&["--certs-dir", unreadable.to_str().unwrap()]);
    assert!(e.contains("nothing-here/ca.crt") && e.contains("No such file"), "{e}");
}

/// `tidal bench` speaks TLS and AUTH (`rediss://`, `--cacert`,
/// `--password`), and its storm scenario opens connections all at once
/// beside a steady load; a wrong CA or password stops it before any load.
#[test]
fn bench_reaches_a_tls_port_with_a_password_and_storms_it() {
    let tmp = common::tempdir::TempDir::new("tidal-storm");
    let pass = tmp.path().join("pass");
    std::fs::write(&pass, "hunter2").unwrap();
    let c = Cluster::start_secure(3, &["--client-tls", "--requirepass-file", pass.to_str().unwrap()]);
    let ca = c.certs.clone().unwrap();
    let target = format!("rediss://{},{}", c.nodes[0].redis, c.nodes[1].redis);
    let bench = |extra: &[&str]| {
        Command::new(common::BIN)
            .args(["bench", "--target", &target, "--clients", "4", "--duration", "2s", "--keys", "200"])
            .args(["--cacert", ca.join("ca.crt").to_str().unwrap(), "--json", "-"])
            .args(extra)
            .env("TIDAL_LOG", "warn")
            .output()
            .unwrap()
    };
    let out = bench(&["--password", "hunter2", "--scenario", "storm", "--storm-connections", "60"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["storm"]["established"], 60, "{}", s["storm"]);
    let phases = s["phases"].as_array().unwrap();
    assert_eq!(phases.iter().map(|p| p["name"].as_str().unwrap()).collect::<Vec<_>>(), ["steady", "storm"]);
    for p in phases {
        assert_eq!(p["errors"], 0, "{p}");
        assert!(p["ops"].as_u64().unwrap() > 0, "{p}");
    }
    // The HTTPS data API, with the password as a bearer token.
    let out = Command::new(common::BIN)
        .args(["bench", "--target", &format!("https://{}", c.nodes[2].http), "--clients", "2", "--duration", "1s"])
        .args(["--keys", "50", "--password", "hunter2", "--json", "-"])
        .args(["--cacert", ca.join("ca.crt").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["phases"][0]["errors"], 0, "{}", s["phases"][0]);
    assert!(s["phases"][0]["ops"].as_u64().unwrap() > 0);
    let out = bench(&["--password", "wrong"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("WRONGPASS"));
    let other = tmp.path().join("other");
    common::certs_cmd(&["init", "--dir"], &other);
    let out = Command::new(common::BIN)
        .args(["bench", "--target", &target, "--duration", "1s", "--password", "hunter2"])
        .args(["--cacert", other.join("ca.crt").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64), "a server certificate of another CA");
}
