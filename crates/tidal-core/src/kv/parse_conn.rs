//! Argument rules of connection and server commands (PING, HELLO, AUTH,
//! CLIENT, CONFIG, COMMAND, INFO, ...), mirroring Redis 7's checks.

use super::command::{clip, is, take, Command};
use super::conn::{ClientSetInfoAttr, CommandSub, ConnCmd, ReplyMode};
use super::integer::parse_i64;
use super::reply::Reply;

type Args = Vec<Vec<u8>>;
type Parsed = Result<Command, Reply>;

fn conn(c: ConnCmd) -> Parsed {
    Ok(Command::Conn(c))
}

/// Client names and library attributes must be printable ASCII without
/// spaces, so CLIENT LIST stays parseable.
fn printable(value: &[u8]) -> bool {
    value.iter().all(|b| (b'!'..=b'~').contains(b))
}

pub(super) fn ping(mut a: Args) -> Parsed {
    match a.len() {
        1 => conn(ConnCmd::Ping(None)),
        2 => conn(ConnCmd::Ping(Some(take(&mut a, 1)))),
        _ => Err(Reply::wrong_arity("ping")),
    }
}

pub(super) fn echo(mut a: Args) -> Parsed {
    conn(ConnCmd::Echo(take(&mut a, 1)))
}

pub(super) fn quit(_: Args) -> Parsed {
    conn(ConnCmd::Quit)
}

pub(super) fn reset(_: Args) -> Parsed {
    conn(ConnCmd::Reset)
}

pub(super) fn multi(_: Args) -> Parsed {
    conn(ConnCmd::Multi)
}

pub(super) fn exec(_: Args) -> Parsed {
    conn(ConnCmd::Exec)
}

pub(super) fn discard(_: Args) -> Parsed {
    conn(ConnCmd::Discard)
}

pub(super) fn watch(mut a: Args) -> Parsed {
    a.remove(0);
    conn(ConnCmd::Watch(a))
}

pub(super) fn time(_: Args) -> Parsed {
    conn(ConnCmd::Time)
}

pub(super) fn save(_: Args) -> Parsed {
    conn(ConnCmd::Save)
}

pub(super) fn shutdown(_: Args) -> Parsed {
    conn(ConnCmd::Shutdown)
}

pub(super) fn unwatch(_: Args) -> Parsed {
    conn(ConnCmd::Unwatch)
}

pub(super) fn readonly(_: Args) -> Parsed {
    conn(ConnCmd::ReadOnly)
}

pub(super) fn readwrite(_: Args) -> Parsed {
    conn(ConnCmd::ReadWrite)
}

pub(super) fn hello(mut a: Args) -> Parsed {
    let mut protover = None;
    let mut next = 1;
    if a.len() >= 2 {
        let v = parse_i64(&a[1]).ok_or_else(|| Reply::err("Protocol version is not an integer or out of range"))?;
        if !(2..=3).contains(&v) {
            return Err(Reply::Error("NOPROTO unsupported protocol version".into()));
        }
        protover = Some(v);
        next = 2;
    }
    let (mut auth, mut setname) = (None, None);
    let mut j = next;
    while j < a.len() {
        let more = a.len() - 1 - j;
        if is(&a[j], "AUTH") && more >= 2 {
            auth = Some((take(&mut a, j + 1), take(&mut a, j + 2)));
            j += 3;
        } else if is(&a[j], "SETNAME") && more >= 1 {
            setname = Some(take(&mut a, j + 1));
            j += 2;
        } else {
            return Err(Reply::err(format!("Syntax error in HELLO option '{}'", clip(&a[j], a[j].len()))));
        }
    }
    if let Some(name) = &setname {
        if !printable(name) {
            return Err(bad_client_name());
        }
    }
    conn(ConnCmd::Hello { protover, auth, setname })
}

pub(super) fn auth(mut a: Args) -> Parsed {
    match a.len() {
        2 => conn(ConnCmd::Auth { user: None, pass: take(&mut a, 1) }),
        3 => conn(ConnCmd::Auth { user: Some(take(&mut a, 1)), pass: take(&mut a, 2) }),
        _ => Err(Reply::syntax()),
    }
}

pub(super) fn select(a: Args) -> Parsed {
    let index = parse_i64(&a[1]).ok_or_else(Reply::not_integer)?;
    if i32::try_from(index).is_err() {
        return Err(Reply::err("value is out of range, value must between -2147483648 and 2147483647"));
    }
    conn(ConnCmd::Select(index))
}

pub(super) fn wait(a: Args) -> Parsed {
    let numreplicas = parse_i64(&a[1]).ok_or_else(Reply::not_integer)?;
    let timeout_ms = parse_i64(&a[2]).ok_or_else(|| Reply::err("timeout is not an integer or out of range"))?;
    if timeout_ms < 0 {
        return Err(Reply::err("timeout is negative"));
    }
    conn(ConnCmd::Wait { numreplicas, timeout_ms })
}

pub(super) fn info(a: Args) -> Parsed {
    conn(ConnCmd::Info(a.into_iter().skip(1).collect()))
}

/// CLIENT or CONFIG without a subcommand never reaches here (arity -2);
/// kept so every table entry has a parser.
pub(super) fn container_help(a: Args) -> Parsed {
    Err(Reply::wrong_arity(&String::from_utf8_lossy(&a[0]).to_ascii_lowercase()))
}

fn bad_client_name() -> Reply {
    Reply::err("Client names cannot contain spaces, newlines or special characters.")
}

pub(super) fn client_setname(mut a: Args) -> Parsed {
    let name = take(&mut a, 2);
    if !printable(&name) {
        return Err(bad_client_name());
    }
    conn(ConnCmd::ClientSetName(name))
}

pub(super) fn client_getname(_: Args) -> Parsed {
    conn(ConnCmd::ClientGetName)
}

pub(super) fn client_setinfo(mut a: Args) -> Parsed {
    let attr = if is(&a[2], "LIB-NAME") {
        ClientSetInfoAttr::LibName
    } else if is(&a[2], "LIB-VER") {
        ClientSetInfoAttr::LibVer
    } else {
        return Err(Reply::err(format!("Unrecognized option '{}'", clip(&a[2], a[2].len()))));
    };
    let value = take(&mut a, 3);
    if !printable(&value) {
        return Err(Reply::err(format!(
            "{} cannot contain spaces, newlines or special characters.",
            clip(&a[2], a[2].len())
        )));
    }
    conn(ConnCmd::ClientSetInfo { attr, value })
}

pub(super) fn client_id(_: Args) -> Parsed {
    conn(ConnCmd::ClientId)
}

pub(super) fn client_info(_: Args) -> Parsed {
    conn(ConnCmd::ClientInfo)
}

/// CLIENT LIST; TYPE/ID filters are accepted and left to the node.
pub(super) fn client_list(_: Args) -> Parsed {
    conn(ConnCmd::ClientList)
}

/// CLIENT UNBLOCK client-id [TIMEOUT|ERROR].
pub(super) fn client_unblock(a: Args) -> Parsed {
    let id = parse_i64(&a[2]).ok_or_else(Reply::not_integer)?;
    let error = match a.get(3) {
        None => false,
        Some(how) if is(how, "TIMEOUT") && a.len() == 4 => false,
        Some(how) if is(how, "ERROR") && a.len() == 4 => true,
        Some(_) => return Err(Reply::err("CLIENT UNBLOCK reason should be TIMEOUT or ERROR")),
    };
    // Ids are positive; any other number names no client.
    conn(ConnCmd::ClientUnblock { id: u64::try_from(id).unwrap_or(0), error })
}

fn on_off(arg: &[u8]) -> Result<bool, Reply> {
    if is(arg, "ON") {
        Ok(true)
    } else if is(arg, "OFF") {
        Ok(false)
    } else {
        Err(Reply::syntax())
    }
}

pub(super) fn client_no_evict(a: Args) -> Parsed {
    conn(ConnCmd::ClientNoEvict(on_off(&a[2])?))
}

pub(super) fn client_no_touch(a: Args) -> Parsed {
    conn(ConnCmd::ClientNoTouch(on_off(&a[2])?))
}

pub(super) fn client_reply(a: Args) -> Parsed {
    let mode = if is(&a[2], "ON") {
        ReplyMode::On
    } else if is(&a[2], "OFF") {
        ReplyMode::Off
    } else if is(&a[2], "SKIP") {
        ReplyMode::Skip
    } else {
        return Err(Reply::syntax());
    };
    conn(ConnCmd::ClientReply(mode))
}

pub(super) fn help(lines: &[&str]) -> Parsed {
    conn(ConnCmd::Help(lines.iter().map(|l| l.to_string()).collect()))
}

pub(super) fn client_help(_: Args) -> Parsed {
    help(&[
        "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GETNAME",
        "    Return the name of the current connection.",
        "ID",
        "    Return the ID of the current connection.",
        "INFO",
        "    Return information about the current client connection.",
        "LIST",
        "    Return information about client connections.",
        "SETNAME <name>",
        "    Assign the name <name> to the current connection.",
        "SETINFO <LIB-NAME|LIB-VER> <value>",
        "    Record the client library name or version.",
        "UNBLOCK <clientid> [TIMEOUT|ERROR]",
        "    Unblock the specified blocked client (one of this node's).",
        "NO-EVICT (ON|OFF)",
        "    Accepted for compatibility.",
        "NO-TOUCH (ON|OFF)",
        "    Accepted for compatibility.",
        "REPLY (ON|OFF|SKIP)",
        "    Control the replies sent to the current connection.",
        "HELP",
        "    Print this help.",
    ])
}

/// `FUNCTION FLUSH [ASYNC|SYNC]`.
pub(super) fn function_flush(a: Args) -> Parsed {
    match a.get(2) {
        None => {}
        Some(mode) if is(mode, "ASYNC") || is(mode, "SYNC") => {}
        Some(_) => return Err(Reply::err("FUNCTION FLUSH only supports SYNC|ASYNC option")),
    }
    conn(ConnCmd::FunctionFlush)
}

pub(super) fn object_help(_: Args) -> Parsed {
    help(&[
        "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "ENCODING <key>",
        "    Return the kind of internal representation used in order to store the value",
        "    associated with a <key>.",
        "FREQ <key>",
        "    Return the access frequency index of the <key>. The returned integer is",
        "    proportional to the logarithm of the recent access frequency of the key.",
        "IDLETIME <key>",
        "    Return the idle time of the <key>, that is the approximated number of",
        "    seconds elapsed since the last access to the key.",
        "REFCOUNT <key>",
        "    Return the number of references of the value associated with the specified",
        "    <key>.",
        "HELP",
        "    Print this help.",
    ])
}

pub(super) fn config_get(a: Args) -> Parsed {
    conn(ConnCmd::ConfigGet(a.into_iter().skip(2).collect()))
}

/// CONFIG SET name value [name value ...]; a dangling name is a syntax
/// error in Redis 7 (fewer than two arguments is an arity error).
pub(super) fn config_set(a: Args) -> Parsed {
    if a.len() % 2 == 1 {
        return Err(Reply::syntax());
    }
    let mut it = a.into_iter().skip(2);
    let mut pairs = Vec::new();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        pairs.push((k, v));
    }
    conn(ConnCmd::ConfigSet(pairs))
}

pub(super) fn config_resetstat(_: Args) -> Parsed {
    conn(ConnCmd::ConfigResetStat)
}

pub(super) fn memory_help(_: Args) -> Parsed {
    help(&[
        "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "USAGE <key> [SAMPLES <count>]",
        "    Return memory in bytes used by <key> and its value, estimated from its",
        "    stored rows. Nested values are sampled up to <count> times (default: 5,",
        "    0 means sample all).",
        "HELP",
        "    Print this help.",
    ])
}

pub(super) fn function_help(_: Args) -> Parsed {
    help(&[
        "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "FLUSH [ASYNC|SYNC]",
        "    Delete every library. tidal runs no scripts, so there are none.",
        "HELP",
        "    Print this help.",
    ])
}

pub(super) fn config_help(_: Args) -> Parsed {
    help(&[
        "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GET <pattern>",
        "    Return parameters matching the glob-like <pattern> and their values.",
        "SET <directive> <value> [<directive> <value> ...]",
        "    Set the encoding thresholds OBJECT ENCODING reads (hash-max-listpack-entries",
        "    and the like) on this node; the rest of tidal's configuration is set when",
        "    a node starts, and such a SET is refused.",
        "RESETSTAT",
        "    Reset statistics reported by the INFO command.",
        "HELP",
        "    Print this help.",
    ])
}

pub(super) fn command_all(_: Args) -> Parsed {
    conn(ConnCmd::Command(CommandSub::All))
}

pub(super) fn command_count(_: Args) -> Parsed {
    conn(ConnCmd::Command(CommandSub::Count))
}

/// COMMAND LIST; the FILTERBY forms are not supported.
pub(super) fn command_list(a: Args) -> Parsed {
    if a.len() > 2 {
        return Err(Reply::syntax());
    }
    conn(ConnCmd::Command(CommandSub::List))
}

pub(super) fn command_info(a: Args) -> Parsed {
    conn(ConnCmd::Command(CommandSub::Info(a.into_iter().skip(2).collect())))
}

pub(super) fn command_getkeys(a: Args) -> Parsed {
    conn(ConnCmd::Command(CommandSub::GetKeys { args: a.into_iter().skip(2).collect(), flags: false }))
}

pub(super) fn command_getkeysandflags(a: Args) -> Parsed {
    conn(ConnCmd::Command(CommandSub::GetKeys { args: a.into_iter().skip(2).collect(), flags: true }))
}

pub(super) fn command_docs(a: Args) -> Parsed {
    conn(ConnCmd::Command(CommandSub::Docs(a.into_iter().skip(2).collect())))
}

pub(super) fn command_help(_: Args) -> Parsed {
    help(&[
        "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "(no subcommand)",
        "    Return details about all commands.",
        "COUNT",
        "    Return the total number of commands.",
        "DOCS [<command-name> ...]",
        "    Return documentary information (none is shipped).",
        "INFO [<command-name> ...]",
        "    Return details about the named commands, or all of them.",
        "LIST",
        "    Return the names of all commands.",
        "HELP",
        "    Print this help.",
    ])
}

#[cfg(test)]
#[path = "parse_conn_tests.rs"]
mod tests;
