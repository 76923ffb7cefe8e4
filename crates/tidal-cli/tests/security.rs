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
    use tidal_raft::transport::{decode_frame, encode_frame, Frame};
    let mut out = Vec::new();
    encode_frame(&Frame::Request { id: 1, group: "default:0".into(), epoch: 1, body }, &mut out).unwrap();
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
    // Plain TCP gets nothing either.
    let mut plain = TcpStream::connect(peer).unwrap();
    plain.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert!(peer_call(&mut plain, vote_from(1)).is_err());
    assert!(c.log(0).contains("peer refused"), "the node says why");

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
fn certificates_rotate_on_sighup_without_a_restart() {
    let c = Cluster::start_secure(3, &[]);
    let ca = c.certs.clone().unwrap();
    let served = || {
        let s = tls_connect(&c.nodes[0].http, &ca, None).unwrap();
        s.conn.peer_certificates().unwrap()[0].to_vec()
    };
    let before = served();
    let mut client = c.client(0);
    assert_eq!(client.cmd(&["SET", "a", "1"]).unwrap(), Value::Simple("OK".into()));

    // A new certificate for node 1, then SIGHUP.
    common::certs_cmd(&["node", "--id", "1", "--overwrite", "--dir"], &ca);
    let pid = c.nodes[0].child.as_ref().unwrap().id().to_string();
    let hup = || assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    hup();
    let after = wait_for(Duration::from_secs(10), "the new certificate to be served", || {
        let now = served();
        (now != before).then_some(now)
    });
    // Sessions established before go on, and node 1 still talks to its peers.
    assert_eq!(client.cmd(&["SET", "b", "2"]).unwrap(), Value::Simple("OK".into()));
    for k in 0..20 {
        let key = format!("k{k}");
        assert_eq!(c.client(0).cmd(&["SET", &key, "x"]).unwrap(), Value::Simple("OK".into()));
        assert_eq!(c.client(2).cmd(&["GET", &key]).unwrap(), Value::bulk("x"));
    }

    // A broken file is refused: the certificate in use stays.
    let node1 = ca.join("node-1");
    std::fs::write(node1.join("node.crt"), "not a certificate").unwrap();
    hup();
    wait_for(Duration::from_secs(10), "the refusal in the log", || {
        c.log(0).contains("certificates not reloaded").then_some(())
    });
    assert_eq!(served(), after);
    assert_eq!(client.cmd(&["GET", "b"]).unwrap(), Value::bulk("2"));
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
}
