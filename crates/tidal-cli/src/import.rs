//! `tidal import --from redis://HOST:PORT`: copy the keys of a Redis server
//! into tidal, each with its value and TTL, through DUMP and RESTORE.
//!
//! ```text
//!  Redis ── SCAN page ──> keys ── PTTL, DUMP (pipelined) ──> payloads
//!  tidal <── RESTORE key ttl payload [REPLACE] (pipelined) ──┘
//! ```
//!
//! tidal reads Redis's DUMP payloads as they are (`docs/compatibility.md`),
//! and routes each RESTORE to its key's PRG, so one node's RESP port takes
//! the whole import. The source keeps serving while it runs: the copy is
//! of each key as it was when its page was read, and SCAN's guarantee is
//! Redis's (a key present from start to end is returned at least once; one
//! written meanwhile may or may not be). A key SCAN returns again (it may,
//! while Redis resizes its table) is copied once: the import remembers a
//! 64-bit digest of every key it has read, about 16 bytes a key. A key
//! already in tidal is left alone and counted, unless `--replace`; a value
//! tidal cannot hold (a module type, a value past `--max-value-bytes`) is
//! reported with its key, and the import goes on.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{BufWriter, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use redis_protocol::resp2::decode::decode_bytes_mut;
use redis_protocol::resp2::types::BytesFrame;
use serde_json::json;

use crate::EXIT_USAGE;

/// Exit status when some keys could not be copied.
const EXIT_FAILED_KEYS: i32 = 1;
/// Keys whose errors the summary names.
const NAMED_ERRORS: usize = 10;

#[derive(clap::Args)]
pub struct ImportArgs {
    /// The Redis to copy from: `redis://[:PASSWORD@]HOST:PORT` (or
    /// `HOST:PORT`).
    #[arg(long)]
    from: String,
    /// A tidal node's RESP address, the same forms.
    #[arg(long, default_value = "127.0.0.1:6380")]
    to: String,
    /// Only the keys matching this glob pattern (SCAN's MATCH).
    #[arg(long = "match", default_value = "*")]
    pattern: String,
    /// Keys read and written per round trip (SCAN's COUNT).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    batch: u32,
    /// Overwrite keys tidal already holds (else they are left and counted).
    #[arg(long)]
    replace: bool,
    /// Seconds to wait for one reply before giving up.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(a: ImportArgs) -> i32 {
    let timeout = Duration::from_secs(a.timeout.max(1));
    let (mut from, mut to) = match (Conn::open(&a.from, timeout), Conn::open(&a.to, timeout)) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(e), _) => return fail(&format!("--from {}: {e}", a.from), EXIT_USAGE),
        (_, Err(e)) => return fail(&format!("--to {}: {e}", a.to), EXIT_USAGE),
    };
    let progress = indicatif::ProgressBar::new_spinner();
    progress.enable_steady_tick(Duration::from_millis(200));
    let began = Instant::now();
    let mut tally = Tally::default();
    let result = copy_all(&mut from, &mut to, &a, &mut tally, |t| {
        progress.set_message(format!(
            "{} keys read, {} copied, {} already in tidal, {} failed",
            t.scanned - t.repeated,
            t.copied,
            t.existing,
            t.failed.len()
        ))
    });
    progress.finish_and_clear();
    let seconds = began.elapsed().as_secs_f64();
    if let Err(e) = result {
        eprintln!("error: {e} (after {} keys copied)", tally.copied);
        return 2;
    }
    if a.json {
        let errors: Vec<_> =
            tally.failed.iter().map(|(k, e)| json!({"key": String::from_utf8_lossy(k), "error": e})).collect();
        let summary = json!({
            "scanned": tally.scanned,
            "repeated": tally.repeated,
            "copied": tally.copied,
            "existing": tally.existing,
            "gone": tally.gone,
            "failed": tally.failed.len(),
            "errors": errors,
            "seconds": seconds,
        });
        println!("{summary}");
    } else {
        println!(
            "{} keys read from {} in {seconds:.1} s: {} copied, {} already in tidal{}, {} gone before they were read, {} failed{}",
            tally.scanned - tally.repeated,
            a.from,
            tally.copied,
            tally.existing,
            if a.replace { "" } else { " (left alone; --replace overwrites)" },
            tally.gone,
            tally.failed.len(),
            match tally.repeated {
                0 => String::new(),
                n => format!(" ({n} returned again by SCAN, copied once)"),
            }
        );
        for (key, error) in tally.failed.iter().take(NAMED_ERRORS) {
            println!("  {}: {error}", String::from_utf8_lossy(key));
        }
        if tally.failed.len() > NAMED_ERRORS {
            println!("  ... and {} more", tally.failed.len() - NAMED_ERRORS);
        }
    }
    if tally.failed.is_empty() {
        0
    } else {
        EXIT_FAILED_KEYS
    }
}

fn fail(msg: &str, code: i32) -> i32 {
    eprintln!("error: {msg}");
    code
}

/// What an import did, key by key.
#[derive(Default)]
struct Tally {
    /// Keys SCAN returned, repeats included.
    scanned: u64,
    /// Keys SCAN returned again, skipped.
    repeated: u64,
    copied: u64,
    existing: u64,
    /// Deleted or expired between SCAN and DUMP.
    gone: u64,
    failed: Vec<(Vec<u8>, String)>,
}

fn copy_all(
    from: &mut Conn,
    to: &mut Conn,
    a: &ImportArgs,
    tally: &mut Tally,
    mut report: impl FnMut(&Tally),
) -> Result<(), String> {
    let mut cursor = b"0".to_vec();
    let count = a.batch.to_string();
    let mut seen = HashSet::new();
    loop {
        let page = from.call(&[b"SCAN", &cursor, b"MATCH", a.pattern.as_bytes(), b"COUNT", count.as_bytes()])?;
        let (next, mut keys) = scan_page(page).map_err(|e| format!("SCAN: {e}"))?;
        tally.scanned += keys.len() as u64;
        tally.repeated += first_reads(&mut seen, &mut keys);
        copy_page(from, to, &keys, a.replace, tally)?;
        report(tally);
        if next == b"0" {
            return Ok(());
        }
        cursor = next;
    }
}

/// Keep in `keys` only those not in `seen` (by digest), and note them
/// there; how many were dropped.
fn first_reads(seen: &mut HashSet<u64>, keys: &mut Vec<Vec<u8>>) -> u64 {
    let before = keys.len();
    keys.retain(|k| {
        let mut h = DefaultHasher::new();
        k.hash(&mut h);
        seen.insert(h.finish())
    });
    (before - keys.len()) as u64
}

/// One SCAN reply: the next cursor and the page's keys.
fn scan_page(reply: BytesFrame) -> Result<(Vec<u8>, Vec<Vec<u8>>), String> {
    let BytesFrame::Array(mut parts) = reply else { return Err(format!("unexpected reply {reply:?}")) };
    let (Some(BytesFrame::Array(keys)), Some(BytesFrame::BulkString(cursor))) = (parts.pop(), parts.pop()) else {
        return Err("unexpected reply shape".into());
    };
    let keys = keys
        .into_iter()
        .map(|k| match k {
            BytesFrame::BulkString(k) => Ok(k.to_vec()),
            other => Err(format!("unexpected key {other:?}")),
        })
        .collect::<Result<_, _>>()?;
    Ok((cursor.to_vec(), keys))
}

fn copy_page(from: &mut Conn, to: &mut Conn, keys: &[Vec<u8>], replace: bool, tally: &mut Tally) -> Result<(), String> {
    if keys.is_empty() {
        return Ok(());
    }
    let mut reads: Vec<Vec<&[u8]>> = Vec::with_capacity(keys.len() * 2);
    for k in keys {
        reads.push(vec![b"PTTL", k]);
        reads.push(vec![b"DUMP", k]);
    }
    let replies = from.pipeline(&reads)?;
    let mut restores: Vec<(usize, Vec<Vec<u8>>)> = Vec::new();
    for (i, (key, pair)) in keys.iter().zip(replies.chunks(2)).enumerate() {
        let ttl = match &pair[0] {
            BytesFrame::Integer(ms) if *ms > 0 => ms.to_string(),
            BytesFrame::Integer(-1) => "0".into(),
            // -2 (or an expiry reached between the two): gone.
            BytesFrame::Integer(_) => {
                tally.gone += 1;
                continue;
            }
            other => return Err(format!("PTTL: unexpected reply {other:?}")),
        };
        let payload = match &pair[1] {
            BytesFrame::BulkString(p) => p.to_vec(),
            BytesFrame::Null => {
                tally.gone += 1;
                continue;
            }
            BytesFrame::Error(e) => {
                tally.failed.push((key.clone(), format!("DUMP: {e}")));
                continue;
            }
            other => return Err(format!("DUMP: unexpected reply {other:?}")),
        };
        let mut cmd = vec![b"RESTORE".to_vec(), key.clone(), ttl.into_bytes(), payload];
        if replace {
            cmd.push(b"REPLACE".to_vec());
        }
        restores.push((i, cmd));
    }
    let cmds: Vec<Vec<&[u8]>> = restores.iter().map(|(_, c)| c.iter().map(Vec::as_slice).collect()).collect();
    let replies = to.pipeline(&cmds)?;
    for ((i, _), reply) in restores.iter().zip(replies) {
        match reply {
            BytesFrame::SimpleString(_) => tally.copied += 1,
            BytesFrame::Error(e) if e.starts_with("BUSYKEY") => tally.existing += 1,
            BytesFrame::Error(e) => tally.failed.push((keys[*i].clone(), e.to_string())),
            other => return Err(format!("RESTORE: unexpected reply {other:?}")),
        }
    }
    Ok(())
}

/// A blocking RESP2 connection: commands out, replies in, in order.
struct Conn {
    out: BufWriter<TcpStream>,
    input: TcpStream,
    buf: BytesMut,
}

impl Conn {
    /// Connects to `redis://[:PASSWORD@]HOST:PORT` or `HOST:PORT`, and
    /// authenticates when a password is given.
    fn open(url: &str, timeout: Duration) -> Result<Conn, String> {
        if url.starts_with("rediss://") {
            return Err("TLS (rediss://) is not supported by tidal import".into());
        }
        let rest = url.strip_prefix("redis://").unwrap_or(url);
        let rest = rest.split('/').next().unwrap_or(rest);
        // `user:password`, `:password` or `password` before an `@`.
        let (auth, addr) = match rest.rsplit_once('@') {
            Some((auth, addr)) => (Some(auth.split_once(':').unwrap_or(("", auth))), addr),
            None => (None, rest),
        };
        let stream = TcpStream::connect(addr).map_err(|e| format!("cannot connect: {e}"))?;
        stream.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let input = stream.try_clone().map_err(|e| e.to_string())?;
        let mut conn = Conn { out: BufWriter::new(stream), input, buf: BytesMut::new() };
        if let Some((user, password)) = auth.filter(|(_, p)| !p.is_empty()) {
            let reply = if user.is_empty() {
                conn.call(&[b"AUTH", password.as_bytes()])?
            } else {
                conn.call(&[b"AUTH", user.as_bytes(), password.as_bytes()])?
            };
            match reply {
                BytesFrame::SimpleString(_) => {}
                other => return Err(format!("AUTH: {other:?}")),
            }
        }
        match conn.call(&[b"PING"])? {
            BytesFrame::SimpleString(_) => Ok(conn),
            other => Err(format!("PING: {other:?}")),
        }
    }

    fn call(&mut self, args: &[&[u8]]) -> Result<BytesFrame, String> {
        let mut replies = self.pipeline(&[args.to_vec()])?;
        Ok(replies.pop().expect("one reply"))
    }

    /// Sends every command, then reads one reply for each.
    fn pipeline(&mut self, cmds: &[Vec<&[u8]>]) -> Result<Vec<BytesFrame>, String> {
        for args in cmds {
            let mut frame = format!("*{}\r\n", args.len()).into_bytes();
            for a in args {
                frame.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
                frame.extend_from_slice(a);
                frame.extend_from_slice(b"\r\n");
            }
            self.out.write_all(&frame).map_err(|e| format!("write: {e}"))?;
        }
        self.out.flush().map_err(|e| format!("write: {e}"))?;
        let mut replies = Vec::with_capacity(cmds.len());
        let mut chunk = [0u8; 64 << 10];
        while replies.len() < cmds.len() {
            match decode_bytes_mut(&mut self.buf).map_err(|e| format!("bad reply: {e:?}"))? {
                Some((frame, _, _)) => replies.push(frame),
                None => {
                    let n = self.input.read(&mut chunk).map_err(|e| format!("read: {e}"))?;
                    if n == 0 {
                        return Err("the server closed the connection".into());
                    }
                    self.buf.extend_from_slice(&chunk[..n]);
                }
            }
        }
        Ok(replies)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_scan_returns_again_is_copied_once() {
        let mut seen = HashSet::new();
        let mut page = vec![b"a".to_vec(), b"b".to_vec(), b"a".to_vec()];
        assert_eq!(first_reads(&mut seen, &mut page), 1);
        assert_eq!(page, [b"a".to_vec(), b"b".to_vec()]);
        let mut next = vec![b"c".to_vec(), b"b".to_vec()];
        assert_eq!(first_reads(&mut seen, &mut next), 1);
        assert_eq!(next, [b"c".to_vec()]);
    }
}
