//! Framing client requests out of a receive buffer.
//!
//! Follows Redis' request reader: a buffer starting with `*` is an array of
//! bulk strings (`*<n>\r\n` then `$<len>\r\n<bytes>\r\n` per argument);
//! anything else is an inline command line. Limits are checked on the
//! declared lengths, so a client cannot make tidal buffer a huge argument
//! just by announcing it, nor a request of many arguments longer than the
//! request limit (Redis' `client-query-buffer-limit`). Empty requests
//! (`*0`, `*-1`, blank lines) are skipped silently, like Redis.
//!
//! Bytes are consumed only when a whole request is available. The
//! [`RequestDecoder`] remembers how far it has validated a partial request,
//! so a large request arriving in many reads is not re-scanned each time.

use bytes::{Buf, BytesMut};

use super::inline::split_inline;
use crate::kv::{parse_i64, Reply};

/// Most arguments one request may declare.
pub const MAX_MULTIBULK_LEN: i64 = 1024 * 1024;
/// Longest inline line, or length line, before Redis gives up on it.
pub const MAX_INLINE_LEN: usize = 64 * 1024;
/// Most bytes one request may take unless the decoder is given a lower
/// limit: Redis' default `client-query-buffer-limit` (1 GiB).
pub const MAX_REQUEST_LEN: usize = 1024 * 1024 * 1024;

/// A request that cannot be framed. The text is Redis' (`Protocol error:
/// ...`); send it with [`ProtocolError::to_reply`] and close the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProtocolError(pub String);

impl ProtocolError {
    fn new(what: &str) -> ProtocolError {
        ProtocolError(format!("Protocol error: {what}"))
    }

    /// The error reply Redis sends before closing: `-ERR Protocol error: ...`.
    pub fn to_reply(&self) -> Reply {
        Reply::err(&self.0)
    }
}

/// Progress through a partially received array request. Offsets are into
/// the caller's buffer, which is only appended to until the request is
/// complete.
#[derive(Debug, Default)]
struct Partial {
    /// Where the next unread byte of the request is.
    pos: usize,
    /// Arguments still to read.
    remaining: usize,
    /// Length of the argument whose header was read but whose bytes have
    /// not all arrived.
    bulk_len: Option<usize>,
    /// (start, len) of each argument read so far.
    args: Vec<(usize, usize)>,
}

/// Incremental request decoder for one connection.
#[derive(Debug)]
pub struct RequestDecoder {
    max_bulk: usize,
    /// Most bytes of one array request, headers included.
    max_request: usize,
    /// Most arguments of one array request.
    max_args: i64,
    /// Longest inline (telnet-style) request.
    max_inline: usize,
    partial: Option<Partial>,
}

/// Decodes one request from `buf` without keeping state between calls:
/// simple, but rescans a partial request each time. See [`RequestDecoder`].
pub fn decode_request(buf: &mut BytesMut, max_bulk: usize) -> Result<Option<Vec<Vec<u8>>>, ProtocolError> {
    RequestDecoder::new(max_bulk).decode(buf)
}

fn find(buf: &[u8], byte: u8) -> Option<usize> {
    buf.iter().position(|&b| b == byte)
}

impl RequestDecoder {
    /// `max_bulk` is the largest argument accepted (Redis'
    /// `proto-max-bulk-len`); longer declared lengths are protocol errors.
    pub fn new(max_bulk: usize) -> RequestDecoder {
        RequestDecoder {
            max_bulk,
            max_request: MAX_REQUEST_LEN,
            max_args: MAX_MULTIBULK_LEN,
            max_inline: MAX_INLINE_LEN,
            partial: None,
        }
    }

    /// The same decoder with at most `max_args` arguments to a request
    /// (more is a protocol error, as Redis's `invalid multibulk length`).
    pub fn max_args(self, max_args: i64) -> RequestDecoder {
        RequestDecoder { max_args, ..self }
    }

    /// The same decoder with inline requests of at most `max_inline` bytes.
    pub fn max_inline(self, max_inline: usize) -> RequestDecoder {
        RequestDecoder { max_inline, ..self }
    }

    /// The same decoder with requests limited to `max_request` bytes (of
    /// headers and arguments): a request that declares more is a protocol
    /// error before its bytes are buffered.
    pub fn max_request(self, max_request: usize) -> RequestDecoder {
        RequestDecoder { max_request, ..self }
    }

    /// Takes the next complete request off the front of `buf`: `Ok(None)`
    /// when more bytes are needed (nothing is consumed). Between calls the
    /// caller may only append to `buf`.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Vec<u8>>>, ProtocolError> {
        loop {
            if let Some(mut partial) = self.partial.take() {
                if partial.pos > buf.len() {
                    // The buffer was not the one we were reading: start over.
                    continue;
                }
                let done = self.read_args(&mut partial, buf)?;
                if !done {
                    self.partial = Some(partial);
                    return Ok(None);
                }
                let frame = buf.split_to(partial.pos);
                return Ok(Some(partial.args.iter().map(|&(s, l)| frame[s..s + l].to_vec()).collect()));
            }
            if buf.is_empty() {
                return Ok(None);
            }
            if buf[0] != b'*' {
                match self.inline(buf)? {
                    Inline::NeedMore => return Ok(None),
                    Inline::Empty => continue,
                    Inline::Args(args) => return Ok(Some(args)),
                }
            }
            let Some(cr) = find(buf, b'\r') else {
                if buf.len() > MAX_INLINE_LEN {
                    return Err(ProtocolError::new("too big mbulk count string"));
                }
                return Ok(None);
            };
            if cr + 2 > buf.len() {
                return Ok(None);
            }
            let n = match parse_i64(&buf[1..cr]) {
                Some(n) if n <= self.max_args => n,
                _ => return Err(ProtocolError::new("invalid multibulk length")),
            };
            if n <= 0 {
                buf.advance(cr + 2);
                continue;
            }
            self.partial = Some(Partial {
                pos: cr + 2,
                remaining: n as usize,
                bulk_len: None,
                args: Vec::with_capacity((n as usize).min(1024)),
            });
        }
    }

    /// Reads as many arguments as have arrived; true when all have.
    fn read_args(&self, p: &mut Partial, buf: &BytesMut) -> Result<bool, ProtocolError> {
        while p.remaining > 0 {
            let len = match p.bulk_len {
                Some(len) => len,
                None => {
                    let rest = &buf[p.pos..];
                    let Some(cr) = find(rest, b'\r') else {
                        if rest.len() > MAX_INLINE_LEN {
                            return Err(ProtocolError::new("too big bulk count string"));
                        }
                        return Ok(false);
                    };
                    if cr + 2 > rest.len() {
                        return Ok(false);
                    }
                    if rest[0] != b'$' {
                        return Err(ProtocolError(format!(
                            "Protocol error: expected '$', got '{}'",
                            char::from(rest[0])
                        )));
                    }
                    let len = match parse_i64(&rest[1..cr]) {
                        Some(len) if len >= 0 && (len as u64) <= self.max_bulk as u64 => len as usize,
                        _ => return Err(ProtocolError::new("invalid bulk length")),
                    };
                    if (p.pos + cr + 2).saturating_add(len + 2) > self.max_request {
                        return Err(ProtocolError(format!(
                            "Protocol error: request of more than {} bytes",
                            self.max_request
                        )));
                    }
                    p.pos += cr + 2;
                    p.bulk_len = Some(len);
                    len
                }
            };
            // Redis skips the two bytes after the data without checking
            // that they are CRLF; so does tidal.
            if buf.len() - p.pos < len + 2 {
                return Ok(false);
            }
            p.args.push((p.pos, len));
            p.pos += len + 2;
            p.bulk_len = None;
            p.remaining -= 1;
        }
        Ok(true)
    }

    fn inline(&self, buf: &mut BytesMut) -> Result<Inline, ProtocolError> {
        let Some(nl) = find(buf, b'\n') else {
            if buf.len() > self.max_inline {
                return Err(ProtocolError::new("too big inline request"));
            }
            return Ok(Inline::NeedMore);
        };
        if nl > self.max_inline {
            return Err(ProtocolError::new("too big inline request"));
        }
        let end = if nl > 0 && buf[nl - 1] == b'\r' { nl - 1 } else { nl };
        let args = split_inline(&buf[..end]).ok_or_else(|| ProtocolError::new("unbalanced quotes in request"))?;
        buf.advance(nl + 1);
        if args.is_empty() {
            return Ok(Inline::Empty);
        }
        Ok(Inline::Args(args))
    }
}

enum Inline {
    NeedMore,
    Empty,
    Args(Vec<Vec<u8>>),
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
