//! Writing replies in RESP2 or RESP3.
//!
//! | Reply        | RESP2                      | RESP3                 |
//! |--------------|----------------------------|-----------------------|
//! | `Nil`        | `$-1`                      | `_`                   |
//! | `NilArray`   | `*-1`                      | `_`                   |
//! | `Double`     | bulk string                | `,<double>`           |
//! | `Map`        | flat array, 2 per entry    | `%<n>`                |
//! | `Set`        | array                      | `~<n>`                |
//! | `Verbatim`   | bulk string                | `=<n>` with `txt:`    |
//! | `Score`      | bulk string (`%.17g`)      | `,<double>` (`%.17g`) |
//! | `Pairs`      | flat array                 | array of 2-arrays     |
//!
//! Pub/sub messages go out through [`encode_push`]: `>` in RESP3.

use bytes::{BufMut, BytesMut};

use crate::kv::{format_score, Reply};

/// The protocol a connection speaks, switched by HELLO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Proto {
    #[default]
    Resp2,
    Resp3,
}

fn line(out: &mut BytesMut, prefix: u8, body: &[u8]) {
    out.reserve(body.len() + 3);
    out.put_u8(prefix);
    out.put_slice(body);
    out.put_slice(b"\r\n");
}

fn header(out: &mut BytesMut, prefix: u8, n: usize) {
    line(out, prefix, n.to_string().as_bytes());
}

fn bulk(out: &mut BytesMut, data: &[u8]) {
    header(out, b'$', data.len());
    out.reserve(data.len() + 2);
    out.put_slice(data);
    out.put_slice(b"\r\n");
}

/// Status and error lines may not contain CR or LF; Redis replaces them
/// with spaces, and so does tidal.
fn one_line(s: &str) -> Vec<u8> {
    s.bytes().map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }).collect()
}

/// Appends `reply` to `out` in the given protocol.
pub fn encode(reply: &Reply, proto: Proto, out: &mut BytesMut) {
    let resp3 = proto == Proto::Resp3;
    match reply {
        Reply::Ok => out.put_slice(b"+OK\r\n"),
        Reply::Simple(s) => line(out, b'+', &one_line(s)),
        Reply::Error(e) => line(out, b'-', &one_line(e)),
        Reply::Int(n) => line(out, b':', n.to_string().as_bytes()),
        Reply::Bool(b) if resp3 => out.put_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
        Reply::Bool(b) => out.put_slice(if *b { b":1\r\n" } else { b":0\r\n" }),
        Reply::Bulk(b) => bulk(out, b),
        Reply::Nil if resp3 => out.put_slice(b"_\r\n"),
        Reply::Nil => out.put_slice(b"$-1\r\n"),
        Reply::NilArray if resp3 => out.put_slice(b"_\r\n"),
        Reply::NilArray => out.put_slice(b"*-1\r\n"),
        Reply::Array(items) => {
            header(out, b'*', items.len());
            for item in items {
                encode(item, proto, out);
            }
        }
        Reply::Set(items) => {
            header(out, if resp3 { b'~' } else { b'*' }, items.len());
            for item in items {
                encode(item, proto, out);
            }
        }
        Reply::Double(d) if resp3 => line(out, b',', format_double(*d).as_bytes()),
        Reply::Double(d) => bulk(out, format_double(*d).as_bytes()),
        Reply::Map(pairs) => {
            if resp3 {
                header(out, b'%', pairs.len());
            } else {
                header(out, b'*', pairs.len() * 2);
            }
            for (k, v) in pairs {
                encode(k, proto, out);
                encode(v, proto, out);
            }
        }
        Reply::Verbatim(text) if resp3 => {
            header(out, b'=', text.len() + 4);
            out.put_slice(b"txt:");
            out.put_slice(text.as_bytes());
            out.put_slice(b"\r\n");
        }
        Reply::Verbatim(text) => bulk(out, text.as_bytes()),
        Reply::Score(s) if resp3 => line(out, b',', format_score(*s).as_bytes()),
        Reply::Score(s) => bulk(out, format_score(*s).as_bytes()),
        Reply::Keyed(pairs) => {
            header(out, if resp3 { b'%' } else { b'*' }, pairs.len());
            for (k, v) in pairs {
                if !resp3 {
                    header(out, b'*', 2);
                }
                encode(k, proto, out);
                encode(v, proto, out);
            }
        }
        Reply::Pairs(pairs) => {
            header(out, b'*', if resp3 { pairs.len() } else { pairs.len() * 2 });
            for (a, b) in pairs {
                if resp3 {
                    header(out, b'*', 2);
                }
                encode(a, proto, out);
                encode(b, proto, out);
            }
        }
    }
}

/// Appends an out-of-band message (a pub/sub delivery or confirmation):
/// a push (`>`) in RESP3, an array in RESP2.
pub fn encode_push(items: &[Reply], proto: Proto, out: &mut BytesMut) {
    header(out, if proto == Proto::Resp3 { b'>' } else { b'*' }, items.len());
    for item in items {
        encode(item, proto, out);
    }
}

/// Formats a double as Redis 7.2+ does: the shortest digits that read back
/// as the same value, laid out like `%.17g` (plain notation for exponents
/// -4..17, otherwise `d.ddde+XX`), and `inf`, `-inf`, `nan`.
pub fn format_double(d: f64) -> String {
    if d.is_nan() {
        return "nan".into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "inf" } else { "-inf" }.into();
    }
    if d == 0.0 {
        return if d.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "-1.2345e-7".
    let sci = format!("{d:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if !(-4..17).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() { String::new() } else { format!(".{rest}") };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{frac}e{esign}{:02}", exp.abs());
    }
    let point = exp + 1; // digits before the decimal point
    let text = if point <= 0 {
        format!("0.{}{digits}", "0".repeat((-point) as usize))
    } else if point as usize >= digits.len() {
        format!("{digits}{}", "0".repeat(point as usize - digits.len()))
    } else {
        let (int, frac) = digits.split_at(point as usize);
        format!("{int}.{frac}")
    };
    format!("{sign}{text}")
}

#[cfg(test)]
#[path = "encode_tests.rs"]
mod tests;
