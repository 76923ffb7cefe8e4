//! A minimal Redis client over turmoil TCP, for simulated clients: one
//! command per connection, one reply.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends `args` to `addr` and returns the reply: a status or error line as
/// sent (`+OK`, `-ERR ...`), a bulk string's contents, or `(nil)`.
pub async fn call(addr: &str, args: &[&str], timeout: Duration) -> io::Result<String> {
    tokio::time::timeout(timeout, exchange(addr, args))
        .await
        .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "no reply in time")))
}

async fn exchange(addr: &str, args: &[&str]) -> io::Result<String> {
    let mut s = turmoil::net::TcpStream::connect(addr).await?;
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some(rest) = text.strip_prefix('$') {
            if rest.starts_with("-1\r\n") {
                return Ok("(nil)".into());
            }
            if let Some((len, body)) = rest.split_once("\r\n") {
                let len: usize = len.parse().map_err(|_| io::Error::other(format!("bad bulk length in {text:?}")))?;
                if body.len() >= len + 2 {
                    return Ok(body[..len].to_string());
                }
            }
        } else if text.ends_with("\r\n") {
            return Ok(text.trim_end().to_string());
        }
    }
}

/// What a GET reply says the key held: `Some(None)` when missing, `None`
/// when the read failed. A value that is not a number this simulation
/// wrote reads as `u64::MAX`, which no client writes.
pub fn value(reply: &str) -> Option<Option<u64>> {
    match reply {
        "(nil)" => Some(None),
        r if r.starts_with('-') || r.starts_with('+') => None,
        r => Some(Some(r.parse().unwrap_or(u64::MAX))),
    }
}

/// True when a write certainly did not take effect: no connection to the
/// node, or a node that has no cluster to propose it to yet.
pub fn refused(reply: &io::Result<String>) -> bool {
    match reply {
        Err(e) => e.kind() == io::ErrorKind::ConnectionRefused,
        Ok(r) => r.starts_with("-CLUSTERDOWN the cluster is still starting"),
    }
}
