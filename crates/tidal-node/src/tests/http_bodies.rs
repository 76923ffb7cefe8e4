//! Malformed request bodies through a running node's HTTP server: each is
//! answered with a 4xx and an error that says what is wrong, and changes
//! nothing in the cluster.

use std::time::Duration;

use crate::admin::readiness;
use crate::http::MAX_API_BODY;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One HTTP/1.1 request; the status and the body of the answer.
async fn call(addr: &str, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: tidal\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    // A body over the limit may be refused before it is all sent.
    let _ = s.write_all(body).await;
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer).to_string();
    let status = answer.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map_or(String::new(), |(_, b)| b.to_string());
    (status, body)
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_get_a_4xx_that_says_why_and_change_nothing() {
    let (nodes, _dirs) = super::common::three_nodes("tidal-http-bodies", |raw| raw.prgs = Some(2)).await;
    let s = nodes[0].shared.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !readiness(&s).ready {
        assert!(tokio::time::Instant::now() < deadline, "node not ready: {:?}", readiness(&s).reasons);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let addr = s.config.http_addr.clone();
    let before = json(&call(&addr, "GET", "/api/v1/cluster", b"").await.1);

    let bad: &[(&str, &[u8], &str)] = &[
        ("/api/v1/moves", b"{", "invalid request body: EOF while parsing"),
        ("/api/v1/moves", b"true", "invalid request body: invalid type: boolean `true`, expected a JSON object"),
        ("/api/v1/moves", br#"{"tenant":"default","slots":"0-3","to":"default:1","x":1}"#, "unknown field `x`"),
        ("/api/v1/moves", br#"{"tenant":"default","slots":7,"to":"default:1"}"#, "invalid request body"),
        // Once a range to expand slot by slot, four billion of them.
        ("/api/v1/moves", br#"{"tenant":"default","slots":"0-4294967295","to":"default:1"}"#, "numbered below 16384"),
        ("/api/v1/moves", br#"{"kind":"replica","prg":"default:0","from":-1,"to":2}"#, "invalid value: integer `-1`"),
        ("/api/v1/tenants/default/prgs", br#"{"count":"two"}"#, "invalid type: string \"two\", expected u32"),
        ("/api/v1/prgs/default:0/leader", b"\xff\xfe", "invalid request body"),
        ("/api/v1/tenants/default/scale", br#"{"prgs":4294967296}"#, "invalid value"),
        ("/api/v1/clusters/tidal/scale", br#"{"operation":"scale_out","target_count":[[[[]]]]}"#, "invalid type"),
    ];
    for (path, body, why) in bad {
        let (status, answer) = call(&addr, "POST", path, body).await;
        assert_eq!(status, 400, "{path} {}: {answer}", String::from_utf8_lossy(body));
        let error = json(&answer)["error"].as_str().unwrap_or_default().to_string();
        assert!(error.contains(why), "{path} {}: {error}", String::from_utf8_lossy(body));
    }
    // A body over the admin limit is refused before it is parsed.
    let huge = format!("[{}0]", "0,".repeat(MAX_API_BODY / 2));
    let (status, _) = call(&addr, "POST", "/api/v1/moves", huge.as_bytes()).await;
    assert_eq!(status, 413);

    let (status, moves) = call(&addr, "GET", "/api/v1/moves", b"").await;
    assert_eq!((status, json(&moves)), (200, serde_json::json!([])));
    let after = json(&call(&addr, "GET", "/api/v1/cluster", b"").await.1);
    assert_eq!(after["routingEpoch"], before["routingEpoch"], "{after}");
    assert_eq!(after["tenants"], before["tenants"], "{after}");
    assert!(json(&call(&addr, "GET", "/api/v1/operations", b"").await.1)["operations"].as_array().unwrap().is_empty());
    for n in nodes {
        n.stop().await;
    }
}
