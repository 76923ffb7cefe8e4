//! A minimal HTTP/1.1 client over turmoil TCP, for the simulated operator:
//! one request per connection, the status and the body.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends `method path` with an optional JSON `body` to `addr`; the reply's
/// status code and body.
pub async fn request(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    timeout: Duration,
) -> io::Result<(u16, String)> {
    tokio::time::timeout(timeout, exchange(addr, method, path, body.unwrap_or("")))
        .await
        .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "no reply in time")))
}

async fn exchange(addr: &str, method: &str, path: &str, body: &str) -> io::Result<(u16, String)> {
    let mut s = turmoil::net::TcpStream::connect(addr).await?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await?;
    s.write_all(body.as_bytes()).await?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await?;
    parse(&raw)
}

/// The status and body of a whole response (`Content-Length` or read to
/// the end of the connection).
fn parse(raw: &[u8]) -> io::Result<(u16, String)> {
    let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_string());
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| bad("no end of headers"))?;
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| bad("no status line"))?;
    let len = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case("content-length").then(|| v.trim().parse::<usize>().ok()).flatten()
    });
    let body = match len {
        Some(n) if n <= body.len() => &body[..n],
        Some(_) => return Err(bad("body shorter than its Content-Length")),
        None => body,
    };
    Ok((status, body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_parse_to_their_status_and_body() {
        let r = b"HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\ncontent-length: 8\r\n\r\n{\"id\":3}";
        assert_eq!(parse(r).unwrap(), (202, "{\"id\":3}".to_string()));
        assert_eq!(parse(b"HTTP/1.1 404 Not Found\r\n\r\nnope").unwrap(), (404, "nope".to_string()));
        assert!(parse(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort").is_err());
        assert!(parse(b"garbage").is_err());
    }
}
