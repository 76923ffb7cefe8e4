//! The stream commands' arguments, checked as Redis checks them and in
//! its order, into [`StreamWrite`] and [`StreamRead`] ops.

use super::blocking::{BlockOp, Blocking};
use super::command::{is, Command};
use super::integer::parse_i64;
use super::op::{ReadOp, WriteOp};
use super::parse_conn::help;
use super::reply::Reply;
use super::stream::{AddId, NodeLimits, ReadFrom, StreamId, StreamRead, StreamWrite, Trim, TrimBy};

type Args = Vec<Vec<u8>>;
type Parsed = Result<Command, Reply>;

fn invalid_id() -> Reply {
    Reply::err("Invalid stream ID specified as stream command argument")
}

/// Digits only, as a `u64`.
fn number(text: &[u8]) -> Option<u64> {
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// An ID argument: `ms-seq`, or `ms` with `missing_seq`; `-` and `+` too
/// unless `strict`.
fn id(arg: &[u8], missing_seq: u64, strict: bool) -> Result<StreamId, Reply> {
    if !strict && arg == b"-" {
        return Ok(StreamId::MIN);
    }
    if !strict && arg == b"+" {
        return Ok(StreamId::MAX);
    }
    let (ms, seq) = match arg.iter().position(|b| *b == b'-') {
        Some(dash) => (&arg[..dash], Some(&arg[dash + 1..])),
        None => (arg, None),
    };
    let ms = number(ms).ok_or_else(invalid_id)?;
    let seq = match seq {
        Some(s) => number(s).ok_or_else(invalid_id)?,
        None => missing_seq,
    };
    Ok(StreamId::new(ms, seq))
}

/// XADD's ID: `*`, `ms-*` or an exact ID.
fn add_id(arg: &[u8]) -> Result<AddId, Reply> {
    if arg == b"*" {
        return Ok(AddId::Auto);
    }
    if let Some(ms) = arg.strip_suffix(b"-*") {
        return number(ms).map(AddId::AutoSeq).ok_or_else(invalid_id);
    }
    id(arg, 0, true).map(AddId::Exact)
}

/// An integer option's value that may not be negative.
fn not_negative(arg: &[u8], what: &str) -> Result<u64, Reply> {
    let n = parse_i64(arg).ok_or_else(Reply::not_integer)?;
    u64::try_from(n).map_err(|_| Reply::err(format!("The {what} argument must be >= 0.")))
}

/// XADD's and XTRIM's options from argument 2: the trimming and, for
/// XADD, NOMKSTREAM and where the ID stands.
struct AddOrTrim {
    trim: Option<Trim>,
    nomkstream: bool,
    id_at: usize,
}

fn add_or_trim(a: &Args, xadd: bool) -> Result<AddOrTrim, Reply> {
    let mut out = AddOrTrim { trim: None, nomkstream: false, id_at: a.len() };
    let (mut by, mut approx, mut limit) = (None, false, None);
    let incompatible = || Reply::err("syntax error, MAXLEN and MINID options at the same time are not compatible");
    let mut i = 2;
    while i < a.len() {
        let more = a.len() - 1 - i;
        let opt = &a[i];
        if xadd && opt.as_slice() == b"*" {
            out.id_at = i;
            break;
        } else if (is(opt, "MAXLEN") || is(opt, "MINID")) && more > 0 {
            if by.is_some() {
                return Err(incompatible());
            }
            approx = false;
            let next = &a[i + 1];
            if more >= 2 && (next.as_slice() == b"~" || next.as_slice() == b"=") {
                approx = next.as_slice() == b"~";
                i += 1;
            }
            by = Some(if is(opt, "MAXLEN") {
                TrimBy::MaxLen(not_negative(&a[i + 1], "MAXLEN")?)
            } else {
                TrimBy::MinId(id(&a[i + 1], 0, true)?)
            });
            i += 1;
        } else if is(opt, "LIMIT") && more > 0 {
            limit = Some(not_negative(&a[i + 1], "LIMIT")?);
            i += 1;
        } else if xadd && is(opt, "NOMKSTREAM") {
            out.nomkstream = true;
        } else if xadd {
            out.id_at = i;
            break;
        } else {
            return Err(Reply::syntax());
        }
        i += 1;
    }
    if limit.is_some_and(|l| l > 0) && by.is_none() {
        return Err(Reply::err("syntax error, LIMIT cannot be used without specifying a trimming strategy"));
    }
    if !xadd && by.is_none() {
        return Err(Reply::err("syntax error, XTRIM must be called with a trimming strategy"));
    }
    if limit.is_some() && !approx {
        return Err(Reply::err("syntax error, LIMIT cannot be used without the special ~ option"));
    }
    out.trim = by.map(|by| Trim { by, approx, limit });
    Ok(out)
}

fn write(key: Vec<u8>, op: StreamWrite) -> Parsed {
    Ok(Command::Write(WriteOp::Stream { key, op }))
}

fn read(key: Vec<u8>, op: StreamRead) -> Parsed {
    Ok(Command::Read(ReadOp::Stream { key, op }))
}

/// `XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] *|id field value [field value ...]`.
pub(super) fn xadd(mut a: Args) -> Parsed {
    let opts = add_or_trim(&a, true)?;
    let fields_at = opts.id_at + 1;
    if a.len() < fields_at + 2 || (a.len() - fields_at) % 2 == 1 {
        return Err(Reply::wrong_arity("xadd"));
    }
    let id = add_id(&a[opts.id_at])?;
    if id == AddId::Exact(StreamId::MIN) {
        return Err(Reply::err("The ID specified in XADD must be greater than 0-0"));
    }
    let rest = a.split_off(fields_at);
    let mut rest = rest.into_iter();
    let mut fields = Vec::with_capacity(rest.len() / 2);
    while let (Some(f), Some(v)) = (rest.next(), rest.next()) {
        fields.push((f, v));
    }
    let key = std::mem::take(&mut a[1]);
    let node = NodeLimits::default();
    write(key, StreamWrite::Add { id, fields, nomkstream: opts.nomkstream, trim: opts.trim, node })
}

/// `XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count]`.
pub(super) fn xtrim(mut a: Args) -> Parsed {
    let opts = add_or_trim(&a, false)?;
    let trim = opts.trim.ok_or_else(Reply::syntax)?;
    write(std::mem::take(&mut a[1]), StreamWrite::Trim { trim, node: NodeLimits::default() })
}

/// `XDEL key id [id ...]`.
pub(super) fn xdel(mut a: Args) -> Parsed {
    let ids = a[2..].iter().map(|arg| id(arg, 0, true)).collect::<Result<_, _>>()?;
    write(std::mem::take(&mut a[1]), StreamWrite::Del { ids })
}

/// `XLEN key`.
pub(super) fn xlen(mut a: Args) -> Parsed {
    read(std::mem::take(&mut a[1]), StreamRead::Len)
}

/// One end of an XRANGE interval: `(` makes it exclusive.
fn interval(arg: &[u8], missing_seq: u64) -> Result<(StreamId, bool), Reply> {
    match arg.strip_prefix(b"(") {
        Some(rest) if !rest.is_empty() => Ok((id(rest, missing_seq, true)?, true)),
        _ => Ok((id(arg, missing_seq, false)?, false)),
    }
}

fn range_cmd(mut a: Args, rev: bool) -> Parsed {
    let (start_arg, end_arg) = if rev { (&a[3], &a[2]) } else { (&a[2], &a[3]) };
    let (mut start, start_ex) = interval(start_arg, 0)?;
    if start_ex {
        start = start.next().ok_or_else(|| Reply::err("invalid start ID for the interval"))?;
    }
    let (mut end, end_ex) = interval(end_arg, u64::MAX)?;
    if end_ex {
        end = end.prev().ok_or_else(|| Reply::err("invalid end ID for the interval"))?;
    }
    let mut count = None;
    let mut i = 4;
    while i < a.len() {
        if is(&a[i], "COUNT") && i + 1 < a.len() {
            let n = parse_i64(&a[i + 1]).ok_or_else(Reply::not_integer)?;
            count = Some(n.max(0) as u64);
            i += 2;
        } else {
            return Err(Reply::syntax());
        }
    }
    read(std::mem::take(&mut a[1]), StreamRead::Range { start, end, count, rev })
}

/// `XRANGE key start end [COUNT count]`.
pub(super) fn xrange(a: Args) -> Parsed {
    range_cmd(a, false)
}

/// `XREVRANGE key end start [COUNT count]`.
pub(super) fn xrevrange(a: Args) -> Parsed {
    range_cmd(a, true)
}

/// XREAD's BLOCK: milliseconds, an integer.
fn block_ms(arg: &[u8]) -> Result<u64, Reply> {
    let n = parse_i64(arg).ok_or_else(|| Reply::err("timeout is not an integer or out of range"))?;
    u64::try_from(n).map_err(|_| Reply::err("timeout is negative"))
}

/// `XREAD [COUNT count] [BLOCK milliseconds] STREAMS key [key ...] id [id ...]`.
pub(super) fn xread(a: Args) -> Parsed {
    let (mut block, mut count, mut streams) = (None, None, None);
    let mut i = 1;
    while i < a.len() {
        let more = a.len() - 1 - i;
        if is(&a[i], "BLOCK") && more > 0 {
            block = Some(block_ms(&a[i + 1])?);
            i += 1;
        } else if is(&a[i], "COUNT") && more > 0 {
            count = Some(parse_i64(&a[i + 1]).ok_or_else(Reply::not_integer)?.max(0) as u64);
            i += 1;
        } else if is(&a[i], "STREAMS") && more > 0 {
            if !more.is_multiple_of(2) {
                return Err(Reply::err(
                    "Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.",
                ));
            }
            streams = Some(i + 1);
            break;
        } else if is(&a[i], "GROUP") && more >= 2 {
            return Err(Reply::err("The GROUP option is only supported by XREADGROUP. You called XREAD instead."));
        } else if is(&a[i], "NOACK") {
            return Err(Reply::err("The NOACK option is only supported by XREADGROUP. You called XREAD instead."));
        } else {
            return Err(Reply::syntax());
        }
        i += 1;
    }
    let at = streams.ok_or_else(Reply::syntax)?;
    let n = (a.len() - at) / 2;
    let mut keys: Vec<Vec<u8>> = a[at..at + n].to_vec();
    let from = a[at + n..]
        .iter()
        .map(|arg| match arg.as_slice() {
            b"$" => Ok(ReadFrom::Last),
            b">" => Err(Reply::err(
                "The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.",
            )),
            _ => id(arg, 0, true).map(ReadFrom::After),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let key = keys.remove(0);
    let op = ReadOp::Stream { key, op: StreamRead::Read { others: keys, from, count, woken: false } };
    Ok(match block {
        Some(timeout_ms) => Command::Block(Blocking { op: BlockOp::Read(op), timeout_ms }),
        None => Command::Read(op),
    })
}

/// `XSETID key last-id [ENTRIESADDED entries-added] [MAXDELETEDID max-deleted-id]`.
pub(super) fn xsetid(mut a: Args) -> Parsed {
    let last = id(&a[2], 0, true)?;
    let (mut entries_added, mut max_deleted) = (None, None);
    let mut i = 3;
    while i < a.len() {
        let more = a.len() - 1 - i;
        if is(&a[i], "ENTRIESADDED") && more > 0 {
            let n = parse_i64(&a[i + 1]).ok_or_else(Reply::not_integer)?;
            entries_added = Some(u64::try_from(n).map_err(|_| Reply::err("entries_added must be positive"))?);
        } else if is(&a[i], "MAXDELETEDID") && more > 0 {
            let m = id(&a[i + 1], 0, true)?;
            if last < m {
                return Err(Reply::err("The ID specified in XSETID is smaller than the provided max_deleted_entry_id"));
            }
            max_deleted = Some(m);
        } else {
            return Err(Reply::syntax());
        }
        i += 2;
    }
    write(std::mem::take(&mut a[1]), StreamWrite::SetId { last, entries_added, max_deleted })
}

/// `XINFO STREAM key [FULL [COUNT count]]`.
pub(super) fn xinfo_stream(mut a: Args) -> Parsed {
    let wrong = || {
        Reply::err(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try XINFO HELP.",
            super::command::clip(&a[1], 128)
        ))
    };
    let full = match a.len() {
        3 => None,
        4 if is(&a[3], "FULL") => Some(10),
        6 if is(&a[3], "FULL") && is(&a[4], "COUNT") => {
            let n = parse_i64(&a[5]).ok_or_else(Reply::not_integer)?;
            Some(if n < 0 { 10 } else { n as u64 })
        }
        _ => return Err(wrong()),
    };
    read(std::mem::take(&mut a[2]), StreamRead::Info { full })
}

pub(super) fn xinfo_help(_: Args) -> Parsed {
    help(&[
        "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CONSUMERS <key> <groupname>",
        "    Show consumers of <groupname>.",
        "GROUPS <key>",
        "    Show the stream consumer groups.",
        "STREAM <key> [FULL [COUNT <count>]",
        "    Show information about the stream.",
        "HELP",
        "    Print this help.",
    ])
}
