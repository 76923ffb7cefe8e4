//! The stream commands' arguments, checked as Redis checks them and in
//! its order, into [`StreamWrite`] and [`StreamRead`] ops.

use super::blocking::{BlockOp, Blocking};
use super::command::{is, Command};
use super::integer::parse_i64;
use super::op::{ReadOp, WriteOp};
use super::parse_conn::help;
use super::reply::Reply;
use super::stream::{AddId, NodeLimits, ReadFrom, StreamId, StreamRead, StreamWrite, Trim, TrimBy};
use super::stream_group::{Claim, Delivery, GroupFrom, GroupRead, GroupWrite, PendingRange};

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

/// XREAD's and XREADGROUP's options, and their streams: the keys and
/// the ID arguments after STREAMS.
struct ReadArgs {
    block: Option<u64>,
    count: Option<u64>,
    noack: bool,
    /// GROUP's group and consumer.
    names: Option<(Vec<u8>, Vec<u8>)>,
    keys: Vec<Vec<u8>>,
    ids: Vec<Vec<u8>>,
}

/// The options of XREAD (`group` false) or XREADGROUP, in Redis's order
/// of checks.
fn read_args(mut a: Args, group: bool) -> Result<ReadArgs, Reply> {
    let mut r = ReadArgs { block: None, count: None, noack: false, names: None, keys: Vec::new(), ids: Vec::new() };
    let only_group =
        |opt: &str| Reply::err(format!("The {opt} option is only supported by XREADGROUP. You called XREAD instead."));
    let mut streams = None;
    let mut i = 1;
    while i < a.len() {
        let more = a.len() - 1 - i;
        if is(&a[i], "BLOCK") && more > 0 {
            r.block = Some(block_ms(&a[i + 1])?);
            i += 1;
        } else if is(&a[i], "COUNT") && more > 0 {
            r.count = Some(parse_i64(&a[i + 1]).ok_or_else(Reply::not_integer)?.max(0) as u64);
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
            if !group {
                return Err(only_group("GROUP"));
            }
            r.names = Some((std::mem::take(&mut a[i + 1]), std::mem::take(&mut a[i + 2])));
            i += 2;
        } else if is(&a[i], "NOACK") {
            if !group {
                return Err(only_group("NOACK"));
            }
            r.noack = true;
        } else {
            return Err(Reply::syntax());
        }
        i += 1;
    }
    let at = streams.ok_or_else(Reply::syntax)?;
    if group && r.names.is_none() {
        return Err(Reply::err("Missing GROUP option for XREADGROUP"));
    }
    r.ids = a.split_off(at + (a.len() - at) / 2);
    r.keys = a.split_off(at);
    Ok(r)
}

/// `XREAD [COUNT count] [BLOCK milliseconds] STREAMS key [key ...] id [id ...]`.
pub(super) fn xread(a: Args) -> Parsed {
    let ReadArgs { block, count, mut keys, ids, .. } = read_args(a, false)?;
    let from = ids
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

fn group_write(key: Vec<u8>, group: Vec<u8>, op: GroupWrite) -> Parsed {
    write(key, StreamWrite::Group { group, op })
}

/// Redis's answer to a subcommand it cannot take as given.
fn subcommand_error(container: &str, sub: &[u8]) -> Reply {
    Reply::err(format!(
        "unknown subcommand or wrong number of arguments for '{}'. Try {container} HELP.",
        super::command::clip(sub, 128)
    ))
}

/// XGROUP CREATE's and SETID's options from argument 5: MKSTREAM (CREATE
/// only) and ENTRIESREAD.
fn group_options(a: &Args, create: bool) -> Result<(bool, Option<u64>), Reply> {
    let (mut mkstream, mut entries_read) = (false, None);
    let mut i = 5;
    while i < a.len() {
        if create && is(&a[i], "MKSTREAM") {
            mkstream = true;
            i += 1;
        } else if is(&a[i], "ENTRIESREAD") && i + 1 < a.len() {
            let n = parse_i64(&a[i + 1]).ok_or_else(Reply::not_integer)?;
            entries_read = match n {
                -1 => None,
                n if n < 0 => return Err(Reply::err("value for ENTRIESREAD must be positive or -1")),
                n => Some(n as u64),
            };
            i += 2;
        } else {
            return Err(subcommand_error("XGROUP", &a[1]));
        }
    }
    Ok((mkstream, entries_read))
}

/// `XGROUP CREATE key group id|$ [MKSTREAM] [ENTRIESREAD entries-read]`.
pub(super) fn xgroup_create(mut a: Args) -> Parsed {
    if a.len() > 8 {
        return Err(subcommand_error("XGROUP", &a[1]));
    }
    let (mkstream, entries_read) = group_options(&a, true)?;
    let from = match a[4].as_slice() {
        b"$" => ReadFrom::Last,
        arg => ReadFrom::After(id(arg, 0, true)?),
    };
    let group = std::mem::take(&mut a[3]);
    group_write(std::mem::take(&mut a[2]), group, GroupWrite::Create { from, mkstream, entries_read })
}

/// `XGROUP SETID key group id|$ [ENTRIESREAD entries-read]`.
pub(super) fn xgroup_setid(mut a: Args) -> Parsed {
    if a.len() != 5 && a.len() != 7 {
        return Err(subcommand_error("XGROUP", &a[1]));
    }
    let (_, entries_read) = group_options(&a, false)?;
    let from = match a[4].as_slice() {
        b"$" => ReadFrom::Last,
        arg => ReadFrom::After(id(arg, 0, false)?),
    };
    let group = std::mem::take(&mut a[3]);
    group_write(std::mem::take(&mut a[2]), group, GroupWrite::SetId { from, entries_read })
}

/// `XGROUP DESTROY key group`.
pub(super) fn xgroup_destroy(mut a: Args) -> Parsed {
    let group = std::mem::take(&mut a[3]);
    group_write(std::mem::take(&mut a[2]), group, GroupWrite::Destroy)
}

/// `XGROUP CREATECONSUMER key group consumer`.
pub(super) fn xgroup_createconsumer(mut a: Args) -> Parsed {
    let (group, consumer) = (std::mem::take(&mut a[3]), std::mem::take(&mut a[4]));
    group_write(std::mem::take(&mut a[2]), group, GroupWrite::CreateConsumer { consumer })
}

/// `XGROUP DELCONSUMER key group consumer`.
pub(super) fn xgroup_delconsumer(mut a: Args) -> Parsed {
    let (group, consumer) = (std::mem::take(&mut a[3]), std::mem::take(&mut a[4]));
    group_write(std::mem::take(&mut a[2]), group, GroupWrite::DelConsumer { consumer })
}

pub(super) fn xgroup_help(_: Args) -> Parsed {
    help(&[
        "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CREATE <key> <groupname> <id|$> [option]",
        "    Create a new consumer group. Options are:",
        "    * MKSTREAM",
        "      Create the empty stream if it does not exist.",
        "    * ENTRIESREAD entries_read",
        "      Set the group's entries_read counter (internal use).",
        "CREATECONSUMER <key> <groupname> <consumer>",
        "    Create a new consumer in the specified group.",
        "DELCONSUMER <key> <groupname> <consumer>",
        "    Remove the specified consumer.",
        "DESTROY <key> <groupname>",
        "    Remove the specified group.",
        "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
        "    Set the current group ID and entries_read counter.",
        "HELP",
        "    Print this help.",
    ])
}

/// `XREADGROUP GROUP group consumer [COUNT count] [BLOCK milliseconds] [NOACK] STREAMS key [key ...] id [id ...]`.
pub(super) fn xreadgroup(a: Args) -> Parsed {
    let ReadArgs { block, count, noack, names, mut keys, ids } = read_args(a, true)?;
    let (group, consumer) = names.expect("read_args checks GROUP");
    let from = ids
        .iter()
        .map(|arg| match arg.as_slice() {
            b"$" => Err(Reply::err(
                "The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer \
                 by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty \
                 result set.",
            )),
            b">" => Ok(GroupFrom::New),
            _ => id(arg, 0, true).map(GroupFrom::History),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let key = keys.remove(0);
    let op = GroupWrite::Read { others: keys, consumer, from, count, noack, woken: false };
    let op = WriteOp::Stream { key, op: StreamWrite::Group { group, op } };
    Ok(match block {
        Some(timeout_ms) => Command::Block(Blocking { op: BlockOp::Write(op), timeout_ms }),
        None => Command::Write(op),
    })
}

/// `XACK key group id [id ...]`.
pub(super) fn xack(mut a: Args) -> Parsed {
    let ids = a[3..].iter().map(|arg| id(arg, 0, true)).collect::<Result<_, _>>()?;
    let group = std::mem::take(&mut a[2]);
    group_write(std::mem::take(&mut a[1]), group, GroupWrite::Ack { ids })
}

/// An integer argument with its own error text.
fn int_or(arg: &[u8], error: &str) -> Result<i64, Reply> {
    parse_i64(arg).ok_or_else(|| Reply::err(error))
}

/// `XPENDING key group [[IDLE min-idle-time] start end count [consumer]]`.
pub(super) fn xpending(mut a: Args) -> Parsed {
    let range = if a.len() == 3 {
        None
    } else {
        if a.len() < 6 || a.len() > 9 {
            return Err(Reply::syntax());
        }
        let mut at = 3;
        let mut min_idle = 0;
        if is(&a[3], "IDLE") {
            min_idle = parse_i64(&a[4]).ok_or_else(Reply::not_integer)?.max(0) as u64;
            if a.len() < 8 {
                return Err(Reply::syntax());
            }
            at = 5;
        }
        let count = parse_i64(&a[at + 2]).ok_or_else(Reply::not_integer)?.max(0) as u64;
        let (mut start, start_ex) = interval(&a[at], 0)?;
        if start_ex {
            start = start.next().ok_or_else(|| Reply::err("invalid start ID for the interval"))?;
        }
        let (mut end, end_ex) = interval(&a[at + 1], u64::MAX)?;
        if end_ex {
            end = end.prev().ok_or_else(|| Reply::err("invalid end ID for the interval"))?;
        }
        let consumer = a.get(at + 3).cloned();
        if a.len() > at + 4 {
            return Err(Reply::syntax());
        }
        Some(PendingRange { min_idle, start, end, count, consumer })
    };
    let group = std::mem::take(&mut a[2]);
    read(std::mem::take(&mut a[1]), StreamRead::Group { group, op: GroupRead::Pending(range) })
}

/// `XCLAIM key group consumer min-idle-time id [id ...] [IDLE ms] [TIME unix-time-milliseconds] [RETRYCOUNT count] [FORCE] [JUSTID] [LASTID lastid]`.
pub(super) fn xclaim(mut a: Args) -> Parsed {
    let min_idle = int_or(&a[4], "Invalid min-idle-time argument for XCLAIM")?.max(0) as u64;
    let mut ids = Vec::new();
    let mut j = 5;
    while j < a.len() {
        match id(&a[j], 0, true) {
            Ok(id) => ids.push(id),
            Err(_) => break,
        }
        j += 1;
    }
    let mut c = Claim {
        consumer: std::mem::take(&mut a[3]),
        min_idle,
        ids,
        delivery: None,
        retry_count: None,
        force: false,
        justid: false,
        last_id: None,
    };
    while j < a.len() {
        let more = a.len() - 1 - j;
        let opt = &a[j];
        if is(opt, "FORCE") {
            c.force = true;
        } else if is(opt, "JUSTID") {
            c.justid = true;
        } else if is(opt, "IDLE") && more > 0 {
            j += 1;
            c.delivery = Some(Delivery::Idle(int_or(&a[j], "Invalid IDLE option argument for XCLAIM")?));
        } else if is(opt, "TIME") && more > 0 {
            j += 1;
            c.delivery = Some(Delivery::Time(int_or(&a[j], "Invalid TIME option argument for XCLAIM")?));
        } else if is(opt, "RETRYCOUNT") && more > 0 {
            j += 1;
            let n = int_or(&a[j], "Invalid RETRYCOUNT option argument for XCLAIM")?;
            c.retry_count = u64::try_from(n).ok();
        } else if is(opt, "LASTID") && more > 0 {
            j += 1;
            c.last_id = Some(id(&a[j], 0, true)?);
        } else {
            return Err(Reply::err(format!("Unrecognized XCLAIM option '{}'", String::from_utf8_lossy(opt))));
        }
        j += 1;
    }
    let group = std::mem::take(&mut a[2]);
    group_write(std::mem::take(&mut a[1]), group, GroupWrite::Claim(c))
}

/// XAUTOCLAIM's largest COUNT, as Redis bounds it.
const AUTOCLAIM_MAX: i64 = i64::MAX / 16;

/// `XAUTOCLAIM key group consumer min-idle-time start [COUNT count] [JUSTID]`.
pub(super) fn xautoclaim(mut a: Args) -> Parsed {
    let min_idle = int_or(&a[4], "Invalid min-idle-time argument for XAUTOCLAIM")?.max(0) as u64;
    let (mut start, start_ex) = interval(&a[5], 0)?;
    if start_ex {
        start = start.next().ok_or_else(|| Reply::err("invalid start ID for the interval"))?;
    }
    let (mut count, mut justid) = (100, false);
    let mut j = 6;
    while j < a.len() {
        if is(&a[j], "COUNT") && j + 1 < a.len() {
            match parse_i64(&a[j + 1]) {
                Some(n) if (1..=AUTOCLAIM_MAX).contains(&n) => count = n as u64,
                _ => return Err(Reply::err("COUNT must be > 0")),
            }
            j += 1;
        } else if is(&a[j], "JUSTID") {
            justid = true;
        } else {
            return Err(Reply::syntax());
        }
        j += 1;
    }
    let (group, consumer) = (std::mem::take(&mut a[2]), std::mem::take(&mut a[3]));
    group_write(std::mem::take(&mut a[1]), group, GroupWrite::AutoClaim { consumer, min_idle, start, count, justid })
}

/// `XINFO GROUPS key`.
pub(super) fn xinfo_groups(mut a: Args) -> Parsed {
    read(std::mem::take(&mut a[2]), StreamRead::Groups)
}

/// `XINFO CONSUMERS key group`.
pub(super) fn xinfo_consumers(mut a: Args) -> Parsed {
    let group = std::mem::take(&mut a[3]);
    read(std::mem::take(&mut a[2]), StreamRead::Group { group, op: GroupRead::Consumers })
}
